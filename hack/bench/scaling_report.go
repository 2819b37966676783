package main

import (
	"fmt"
	"strings"
)

// scalingReport renders section 2: CA count, layers, bundle size.
func scalingReport(b *strings.Builder, r *results) {
	p := r.Params
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	g := r.Scaling
	const tls = "debian-bookworm-tls"
	w("## 2. Scaling\n\n")
	w("debian-bookworm-tls, mode=auto (fast path; more than 16 CAs are one combined anchor, `combine_above`), %d RUN steps per build, %d rounds; every point\n", p.ScalingSteps, p.Rounds)
	w("against")
	w(" plain (empty CA dir) on the same image in the same rounds.\n\n")

	w("### CAs in the engine's directory\n\n")
	w("| CAs | ms/step (median) | min–max | ratio to plain | overhead ms/step | daemon CPU ms/step | install (log) |\n|---|---|---|---|---|---|---|\n")
	plain := g[tls]["plain"]
	m, rng := stepCell(plain)
	w("| 0 (plain) | %s | %s | 1 | 0 | %s | – |\n", m, rng, cpuCol(plain))
	for _, n := range p.CACounts {
		c := g[tls][specCAs(n).Name]
		m, rng := stepCell(c)
		w("| %d | %s | %s | %s | %s | %s | %s |\n", n, m, rng, cmpRatio(c, plain), cmpOverhead(c, plain), cpuCol(c), installCol(r, specCAs(n).Name, tls))
	}
	w("\n")

	w("### Image layers\n\n")
	w("Small layers (one file each) appended to debian-bookworm-tls with go-containerregistry's `mutate`.\n\n")
	w("| layers | plain ms/step | fast ms/step | fast min–max | ratio | overhead ms/step | daemon CPU plain → fast |\n|---|---|---|---|---|---|---|\n")
	for _, n := range p.LayerCounts {
		key := fmt.Sprintf("%s+%dlayers", tls, n)
		if im := r.Images[tls]; im != nil && n <= im.Layers {
			key = tls
		}
		scalingRow(w, fmt.Sprint(n), g[key]["plain"], g[key]["fast"])
	}
	w("\n")

	w("### Bundle size\n\n")
	w("/etc/ssl/certs/ca-certificates.crt as the image ships it, and grown to 5,000 certificates (ECDSA\n")
	w("P-256, ~0.7 KB each) in an extra layer.\n\n")
	w("| certificates in the bundle | plain ms/step | fast ms/step | fast min–max | ratio | overhead ms/step | daemon CPU plain → fast |\n|---|---|---|---|---|---|---|\n")
	for _, n := range p.BundleSizes {
		key := fmt.Sprintf("%s+bundle%d", tls, n)
		label := fmt.Sprint(n)
		if im := r.Images[tls]; im != nil && n <= im.Bundle {
			key, label = tls, fmt.Sprintf("%d (as shipped)", im.Bundle)
		}
		scalingRow(w, label, g[key]["plain"], g[key]["fast"])
	}
	w("\n")
}

func scalingRow(w func(string, ...any), label string, plain, fast *cell) {
	pm, _ := stepCell(plain)
	fm, frng := stepCell(fast)
	w("| %s | %s | %s | %s | %s | %s | %s → %s |\n", label, pm, fm, frng, cmpRatio(fast, plain), cmpOverhead(fast, plain), cpuCol(plain), cpuCol(fast))
}

func cmpRatio(c, plain *cell) string { return compare(c, plain).ratioText() }

func cmpOverhead(c, plain *cell) string { return compare(c, plain).overheadText() }
