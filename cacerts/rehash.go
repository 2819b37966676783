package cacerts

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
)

// maxCollisions is OpenSSL rehash's MAX_COLLISIONS: links per hash.
const maxCollisions = 256

// rehashFile is a certificate file of the hash directory that falls in the
// bucket being simulated.
type rehashFile struct {
	name   string // directory entry name
	digest [sha1.Size]byte
}

// rehashLink is an existing hash link of the bucket: name is "<hash>.<id>"
// as in the directory, target what it points to.
type rehashLink struct {
	name   string
	id     int
	target string
}

// rehashResult is what `openssl rehash` leaves for one bucket: the links it
// keeps or creates (id -> target) and the ids of links it removes.
type rehashResult struct {
	links   map[int]string
	removed []int
}

// simulateRehash reproduces OpenSSL 3.0's apps/rehash.c (do_dir, add_entry,
// handle_symlink) for the certificate bucket of one subject hash: the
// directory's names are processed in strcmp order; a hash link registers its
// target with its old id; a certificate file registers itself as needing a
// link, unless a file with the same SHA-1 fingerprint was registered before
// ("skipping duplicate certificate"). Then, in registration order, an entry
// whose old id is below the number of entries needing links keeps its link,
// an entry needing a link gets the lowest id not yet taken (replacing what is
// there), and any other entry's link is removed.
//
// files are the certificate files of the directory in this bucket and links
// its existing links of this bucket; names of other entries do not matter.
func simulateRehash(files []rehashFile, links []rehashLink) (rehashResult, error) {
	type item struct {
		name string
		file *rehashFile
		link *rehashLink
	}
	var items []item
	for i := range files {
		items = append(items, item{name: files[i].name, file: &files[i]})
	}
	for i := range links {
		items = append(items, item{name: links[i].name, link: &links[i]})
	}
	type hentry struct {
		filename string
		oldID    int
		need     bool
		digest   [sha1.Size]byte
	}
	var entries []*hentry
	numNeeded := 0
	const noID = 1<<16 - 1 // ~0 as unsigned short
	add := func(filename string, digest *[sha1.Size]byte, need bool, oldID int) error {
		var found *hentry
		for _, ep := range entries {
			if digest != nil && ep.need && ep.digest == *digest {
				return nil // skipping duplicate certificate
			}
			if ep.filename == filename {
				found = ep
				if digest == nil {
					break
				}
			}
		}
		ep := found
		if ep == nil {
			if numNeeded >= maxCollisions {
				return fmt.Errorf("more than %d certificates share one subject hash", maxCollisions)
			}
			ep = &hentry{filename: filename, oldID: noID}
			entries = append(entries, ep)
		}
		if oldID < ep.oldID {
			ep.oldID = oldID
		}
		if need && !ep.need {
			ep.need = true
			numNeeded++
			ep.digest = *digest
		}
		return nil
	}
	// OpenSSL sorts the names with strcmp: byte order, as Go compares strings.
	sort.SliceStable(items, func(a, b int) bool { return items[a].name < items[b].name })
	for _, it := range items {
		var err error
		if it.link != nil {
			err = add(it.link.target, nil, false, it.link.id)
		} else {
			d := it.file.digest
			err = add(it.file.name, &d, true, noID)
		}
		if err != nil {
			return rehashResult{}, err
		}
	}
	res := rehashResult{links: map[int]string{}}
	taken := map[int]bool{}
	for _, ep := range entries {
		if ep.oldID < numNeeded {
			taken[ep.oldID] = true
		}
	}
	nextID := 0
	for _, ep := range entries {
		switch {
		case ep.oldID < numNeeded:
			// The link exists and is used as it is (whatever it points to).
			for _, l := range links {
				if l.id == ep.oldID {
					res.links[l.id] = l.target
				}
			}
		case ep.need:
			for taken[nextID] {
				nextID++
			}
			res.links[nextID] = ep.filename
			taken[nextID] = true
		case ep.oldID != noID:
			res.removed = append(res.removed, ep.oldID)
		}
	}
	return res, nil
}

// certFileDigest returns the SHA-1 fingerprint and subject hash of a file
// rehash would hash: a .pem/.crt/.cer name holding exactly one PEM
// certificate. ok is false for anything rehash skips.
func certFileDigest(name string, data []byte) (digest [sha1.Size]byte, hash uint32, ok bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return digest, 0, false
	}
	switch strings.ToLower(name[i+1:]) {
	case "pem", "crt", "cer":
	default:
		return digest, 0, false
	}
	var der []byte
	n := 0
	for rest := data; ; {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = r
		n++
		if b.Type == "CERTIFICATE" || b.Type == "X509 CERTIFICATE" || b.Type == "TRUSTED CERTIFICATE" {
			der = b.Bytes
		}
	}
	if n != 1 || der == nil {
		return digest, 0, false
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return digest, 0, false
	}
	h, err := SubjectHash(c.RawSubject)
	if err != nil {
		return digest, 0, false
	}
	return sha1.Sum(c.Raw), h, true
}
