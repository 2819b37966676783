package faults

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// window is the length of the prefix of every needle the rolling hash
// indexes; every needle is at least this long.
const window = 32

// Finding is one place a needle was found.
type Finding struct {
	Where string // file path, "image@layer", …
	CA    string // the CA's subject common name
	Form  string // "DER" or "PEM"
}

func (f Finding) String() string { return fmt.Sprintf("%s: CA %q (%s)", f.Where, f.CA, f.Form) }

type needle struct {
	b    []byte
	ca   string
	form string
}

// Scanner looks for a set of CA certificates in bytes: the certificate's
// raw DER (a Java keystore, a DER file, a PEM decoded by anyone) and the
// first line of its PEM body (a PEM file, a bundle, a combined anchor; a
// PEM body's first line is base64 of the first 48 DER bytes, which hold
// the random serial, so it names one certificate). gzip streams are
// decompressed first. It keeps a memo of regular files found clean, keyed
// by device, inode, size, mtime and ctime, so scanning the same daemon root
// after every trial costs only what changed.
//
// Any number of certificates: the needles' 32-byte prefixes are indexed by
// a rolling hash (Rabin–Karp), so the cost per byte does not grow with the
// count (2000 CAs scan as fast as one).
type Scanner struct {
	needles []needle
	index   map[uint64][]int
	maxLen  int

	mu    sync.Mutex
	clean map[fileKey]bool
	Bytes int64 // bytes read so far (informational)
}

type fileKey struct {
	dev, ino, size uint64
	mtime, ctime   int64
}

// NewScanner returns a scanner for the certificates.
func NewScanner(certs ...*x509.Certificate) *Scanner {
	s := &Scanner{index: map[uint64][]int{}, clean: map[fileKey]bool{}}
	s.Add(certs...)
	return s
}

// Add adds certificates to look for (a CA directory swapped mid-build brings
// new ones). It forgets the clean-file memo.
func (s *Scanner) Add(certs ...*x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range certs {
		der := c.Raw
		n := min(48, len(der))
		pemLine := []byte(base64.StdEncoding.EncodeToString(der[:n]))
		for _, nd := range []needle{{der[:n], c.Subject.CommonName, "DER"}, {pemLine, c.Subject.CommonName, "PEM"}} {
			if len(nd.b) < window {
				continue
			}
			s.index[hashOf(nd.b[:window])] = append(s.index[hashOf(nd.b[:window])], len(s.needles))
			s.needles = append(s.needles, nd)
			s.maxLen = max(s.maxLen, len(nd.b))
		}
	}
	s.clean = map[fileKey]bool{}
}

const prime = 1099511628211

var powWindow = func() uint64 {
	p := uint64(1)
	for range window - 1 {
		p *= prime
	}
	return p
}()

func hashOf(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h*prime + uint64(c)
	}
	return h
}

// match returns the needles found in b (each at most once).
func (s *Scanner) match(b []byte, seen map[int]bool) []int {
	if len(b) < window {
		return nil
	}
	var out []int
	h := hashOf(b[:window])
	for i := 0; ; i++ {
		if ids, ok := s.index[h]; ok {
			for _, id := range ids {
				nd := s.needles[id].b
				if !seen[id] && i+len(nd) <= len(b) && bytes.Equal(b[i:i+len(nd)], nd) {
					seen[id] = true
					out = append(out, id)
				}
			}
		}
		if i+window >= len(b) {
			return out
		}
		h = (h-uint64(b[i])*powWindow)*prime + uint64(b[i+window])
	}
}

// Reader scans a stream (decompressing gzip) and reports what it holds.
func (s *Scanner) Reader(where string, r io.Reader) ([]Finding, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("scanning %s: %w", where, err)
		}
		defer zr.Close()
		return s.stream(where, zr)
	}
	return s.stream(where, br)
}

func (s *Scanner) stream(where string, r io.Reader) ([]Finding, error) {
	buf := make([]byte, 1<<20)
	keep := 0
	seen := map[int]bool{}
	var out []Finding
	for {
		n, err := io.ReadFull(r, buf[keep:])
		s.mu.Lock()
		s.Bytes += int64(n)
		s.mu.Unlock()
		chunk := buf[:keep+n]
		for _, id := range s.match(chunk, seen) {
			out = append(out, Finding{Where: where, CA: s.needles[id].ca, Form: s.needles[id].form})
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("scanning %s: %w", where, err)
		}
		// Keep the tail a needle may straddle.
		keep = min(s.maxLen-1, len(chunk))
		copy(buf, chunk[len(chunk)-keep:])
	}
}

// Bytes scans b.
func (s *Scanner) Data(where string, b []byte) ([]Finding, error) {
	return s.Reader(where, bytes.NewReader(b))
}

// File scans one file (gzip decompressed), unless the memo says it was
// found clean before and has not changed since.
func (s *Scanner) File(p string) ([]Finding, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	k := fileKey{uint64(st.Dev), st.Ino, uint64(st.Size), st.Mtim.Nano(), st.Ctim.Nano()}
	s.mu.Lock()
	done := s.clean[k]
	s.mu.Unlock()
	if done {
		return nil, nil
	}
	found, err := s.Reader(p, f)
	if err != nil {
		// Not gzip after all (a file that starts with the magic): raw.
		if _, serr := f.Seek(0, io.SeekStart); serr == nil {
			found, err = s.stream(p, f)
		}
	}
	if err == nil && len(found) == 0 {
		s.mu.Lock()
		s.clean[k] = true
		s.mu.Unlock()
	}
	return found, err
}

// Tree scans every regular file under dir (symlinks are not followed;
// devices, FIFOs and sockets are skipped). Files that vanish while it walks
// (a daemon removing a snapshot) are skipped.
func (s *Scanner) Tree(dir string) ([]Finding, error) {
	var out []Finding
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		found, err := s.File(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, found...)
		return nil
	})
	return out, err
}
