// Package certs finds certificates of a known set in arbitrary file contents
// and removes them exactly. It is the engine of the post-revert sweep (issue
// 11): after an exec, every file the exec wrote is handed to Set.Find and
// Set.Strip, so that our injected CA certificates cannot leak into a committed
// layer through a path the journal did not predict (a JRE postinst building
// /etc/ssl/certs/java/cacerts from every *.pem, `keytool -importcert`, a
// rename, a copy). It also edits Java keystores (KeystoreKindOf, Entries,
// AddTrusted; Strip takes entries out), appends PEM blocks to a bundle the
// way update-ca-certificates does and takes exactly those back out
// (AppendPEM, RemovePEM, IsPEMBundle), and computes OpenSSL's subject hash
// (SubjectHash, NameHash).
//
// It is ground floor: it imports the standard library, keystore-go (JKS) and
// go-pkcs12 (PKCS#12) only.
//
// # Threat model
//
// The data is untrusted: the exec that wrote it ran arbitrary code and could
// read our CA certificates while it ran. Every function here must return —
// never panic, hang or allocate without bound — whatever the bytes are:
//
//   - Find costs O(len(data)) and does not grow with the size of the set: PEM
//     blocks are found by a scanner that looks at each byte once (Go's
//     encoding/pem is quadratic on a file of BEGIN lines), certificates are
//     looked up by SHA-256, raw DER by its length and first bytes.
//   - Keystore lengths are checked against the data before keystore-go sees
//     them (it allocates what the file says); PKCS#12 files asking for more
//     than 20000 key-derivation iterations are not opened.
//   - Memory is about the largest PEM block, or the size of data for a
//     keystore; data itself is never modified.
//   - Strip returns either data without any of our certificates (it checks
//     with Find before returning) or an error wrapping ErrCannotStrip; it never
//     returns a half-edited file, and never re-signs a keystore with a password
//     it guessed wrong (keystore-go and go-pkcs12 verify the password first and
//     read the result back).
//
// # What Find cannot see
//
// Find recognises our certificates only in the encodings listed on Find:
// PEM text, raw DER anywhere, JKS and PKCS#12 stores. It cannot see them
//
//   - inside compressed data: gzip, xz, zstd, a .jar/.zip (deflate), a
//     compressed tar, a squashfs image, a compressed page of a database;
//   - inside encrypted data: a PKCS#12 store whose password is not
//     "changeit" or empty, or whose key derivation asks for more than 20000
//     iterations, a JCEKS or BCFKS store's protected parts, any encrypted file;
//   - in other encodings of the same bytes: base64 without PEM armour (a
//     Kubernetes Secret, a JSON or YAML value, a data: URL, base64 of a PEM
//     file), hex dumps, PEM text in UTF-16, DER split across tar blocks or
//     file-system chunks;
//   - as a reference instead of a copy: a fingerprint or subject-hash name
//     (the /etc/ssl/certs/<hash>.0 symlinks), a pinned SPKI hash, a
//     trust-anchor file listing only names (cacerts' sweep edits names of
//     its files and hex digests out of text files: cacerts/derived.go).
//
// The sweep must therefore treat a written file it cannot parse as unknown,
// not as clean: Find reporting nothing means only that none of these
// encodings holds our certificate. A process that wants to smuggle our CA out
// can always encode it differently; this package catches the ways trust
// stores and their tools copy it, not an adversary hiding it.
//
// # What Strip changes
//
// Strip removes exactly our certificates: PEM blocks with the line break
// after them (every other byte kept), JKS trusted entries (every other entry
// kept byte for byte, the store re-signed), PKCS#12 trust-store bags (the
// store re-encoded by go-pkcs12 with the same password and cipher family,
// aliases kept). It refuses (ErrCannotStrip) when removing would change
// something else: our DER inside another binary format (an NSS cert9.db, an
// EFI signature list such as p11-kit's edk2/cacerts.bin, a tar) or another
// PEM block type (PKCS7), our certificate in a private key's chain, a keystore with keys
// (PKCS#12) or with a password we do not know, a PKCS#12 encrypted with RC2
// (we cannot read its aliases back).
package certs
