package certs

import "bytes"

// seqTotal parses a DER SEQUENCE header with a long-form length of one to
// three bytes (every certificate from 128 bytes to 16 MiB) at the start of b
// and returns the element's total length, header included.
func seqTotal(b []byte) (int, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, false
	}
	k := int(b[1]) - 0x80
	if k < 1 || k > 3 || len(b) < 2+k {
		return 0, false
	}
	n := 0
	for _, c := range b[2 : 2+k] {
		n = n<<8 | int(c)
	}
	return 2 + k + n, true
}

// firstTLV returns the first DER element of b (any single-byte tag, short or
// long length of up to four bytes), or nil.
func firstTLV(b []byte) []byte {
	if len(b) < 2 {
		return nil
	}
	n, hdr := int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b) < 2+k {
			return nil
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	}
	if n < 0 || n > len(b)-hdr {
		return nil
	}
	return b[:hdr+n]
}

// scanDER calls visit for every certificate of s whose DER encoding occurs in
// data, in order of offset; occurrences do not overlap.
//
// Cost: bytes.IndexByte finds each 0x30; a candidate is one whose SEQUENCE
// header gives a total length that is one of our certificates' lengths and
// fits in data; it is compared with the certificates sharing its length and
// first prefixLen bytes (a map lookup, whatever s.Len() is) and only then byte
// by byte. Random data or text almost never gets past the header check; to
// get past the prefix check the data must copy one of our certificates'
// first prefixLen bytes (its serial number among them), so the comparisons
// add up to O(len(data)) in practice.
func (s *Set) scanDER(data []byte, visit func(off, idx int)) {
	if s.Len() == 0 {
		return
	}
	for i := 0; i+1 < len(data); {
		k := bytes.IndexByte(data[i:], 0x30)
		if k < 0 {
			return
		}
		j := i + k
		i = j + 1
		total, ok := seqTotal(data[j:])
		if !ok || total > len(data)-j {
			continue
		}
		if _, ok := s.lengths[total]; !ok {
			continue
		}
		cand := data[j : j+total]
		for _, idx := range s.byPrefix[keyOf(cand)] {
			if bytes.Equal(cand, s.certs[idx].Raw) {
				visit(j, idx)
				i = j + total
				break
			}
		}
	}
}
