// Package emojifont reads the colour bitmaps of an emoji font: OpenType's
// CBDT/CBLC tables, which hold one PNG per glyph (Noto Color Emoji, as
// Debian's fonts-noto-color-emoji ships it). It reads the character map
// (cmap formats 4 and 12) and the ligatures of GSUB (lookup type 4, also
// inside type-7 extensions) that turn a sequence of code points, such as a
// ZWJ sequence or a flag, into one glyph.
//
// The file is untrusted: every offset, count and length is checked against
// the bytes it points into, PNG sizes are checked before decoding, and a
// malformed font gives an error naming the table and the problem, never a
// panic or an allocation larger than the file.
package emojifont

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
)

// MaxFileSize bounds the font files Open reads.
const MaxFileSize = 64 << 20

// MaxBitmapSide bounds the width and height of a glyph bitmap.
const MaxBitmapSide = 1024

// Font is a parsed colour emoji font.
type Font struct {
	name   string // for messages: the file name
	data   []byte
	cmap   []cmapRange           // sorted code point ranges → glyph
	ligs   map[uint16][]ligature // first glyph → ligatures
	strike strike                // the largest bitmap strike
}

type cmapRange struct {
	lo, hi rune
	glyph  uint32 // glyph of lo; the range maps to consecutive glyphs
}

type ligature struct {
	rest  []uint16 // components after the first
	glyph uint16
}

type strike struct {
	ppem int
	subs []indexSub
}

// indexSub is one CBLC index subtable: glyphs [first, last] with their
// image offsets in CBDT.
type indexSub struct {
	first, last uint16
	imageFormat uint16
	offsets     []uint32 // last−first+2 offsets from the CBDT start (formats 1, 3)
}

// Open reads and parses the font file at path.
func Open(path string) (*Font, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("emoji font: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("emoji font %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("emoji font %s: not a regular file", path)
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("emoji font %s: %d bytes, more than the %d a font may have", path, fi.Size(), MaxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("emoji font %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse parses a font held in memory; name is used in messages.
func Parse(name string, b []byte) (*Font, error) {
	f := &Font{name: name, data: b}
	if err := f.parse(); err != nil {
		return nil, fmt.Errorf("emoji font %s: %w", name, err)
	}
	return f, nil
}

// reader reads big-endian values at offsets, remembering the first
// out-of-range access as its error.
type reader struct {
	b    []byte
	err  error
	what string
}

func (r *reader) fail(off, n int) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: offset %d+%d past its end (%d bytes)", r.what, off, n, len(r.b))
	}
}

func (r *reader) u8(off int) int {
	if off < 0 || off+1 > len(r.b) {
		r.fail(off, 1)
		return 0
	}
	return int(r.b[off])
}

func (r *reader) u16(off int) int {
	if off < 0 || off+2 > len(r.b) {
		r.fail(off, 2)
		return 0
	}
	return int(binary.BigEndian.Uint16(r.b[off:]))
}

func (r *reader) u32(off int) uint32 {
	if off < 0 || off+4 > len(r.b) {
		r.fail(off, 4)
		return 0
	}
	return binary.BigEndian.Uint32(r.b[off:])
}

// sub returns the bytes [off, off+n) as a reader for a sub-structure.
func (r *reader) sub(off, n int, what string) *reader {
	if off < 0 || n < 0 || off > len(r.b) || n > len(r.b)-off {
		r.fail(off, n)
		return &reader{b: nil, err: r.err, what: what}
	}
	return &reader{b: r.b[off : off+n], what: what}
}

func (f *Font) parse() error {
	r := &reader{b: f.data, what: "header"}
	switch v := r.u32(0); v {
	case 0x00010000, 0x74727565: // TrueType outlines or none
	default:
		if r.err != nil {
			return r.err
		}
		return fmt.Errorf("not an OpenType font with bitmaps (version %#08x)", v)
	}
	n := r.u16(4)
	tables := map[string]*reader{}
	for i := 0; i < n; i++ {
		rec := 12 + 16*i
		tag := string(r.b[min(rec, len(r.b)):min(rec+4, len(r.b))])
		off, ln := r.u32(rec+8), r.u32(rec+12)
		if r.err != nil {
			return fmt.Errorf("table directory: %w", r.err)
		}
		if uint64(off)+uint64(ln) > uint64(len(r.b)) {
			return fmt.Errorf("table %q at %d+%d lies past the end of the file (%d bytes)", tag, off, ln, len(r.b))
		}
		tables[tag] = &reader{b: r.b[off : off+ln], what: tag}
	}
	for _, t := range []string{"cmap", "CBLC", "CBDT"} {
		if tables[t] == nil {
			return fmt.Errorf("no %s table: not a colour bitmap (CBDT) font", t)
		}
	}
	if err := f.parseCmap(tables["cmap"]); err != nil {
		return err
	}
	if err := f.parseCBLC(tables["CBLC"], len(tables["CBDT"].b)); err != nil {
		return err
	}
	f.data = tables["CBDT"].b
	if g := tables["GSUB"]; g != nil {
		if err := f.parseGSUB(g); err != nil {
			return err
		}
	}
	return nil
}

// maxCmapRanges bounds the work a cmap can ask for.
const maxCmapRanges = 1 << 20

func (f *Font) parseCmap(r *reader) error {
	n := r.u16(2)
	best, bestFmt := -1, 0
	for i := 0; i < n; i++ {
		pid, eid, off := r.u16(4+8*i), r.u16(6+8*i), int(r.u32(8+8*i))
		format := r.u16(off)
		if r.err != nil {
			return r.err
		}
		unicode := pid == 0 || (pid == 3 && (eid == 1 || eid == 10))
		if unicode && (format == 12 || (format == 4 && bestFmt != 12)) {
			best, bestFmt = off, format
		}
	}
	if best < 0 {
		return errors.New("cmap: no Unicode subtable of format 4 or 12")
	}
	switch bestFmt {
	case 12:
		groups := int(r.u32(best + 12))
		if groups > maxCmapRanges || best+16+12*groups > len(r.b) {
			return fmt.Errorf("cmap: format 12 declares %d groups, more than its %d bytes hold", groups, len(r.b)-best)
		}
		for i := 0; i < groups; i++ {
			g := best + 16 + 12*i
			lo, hi, glyph := r.u32(g), r.u32(g+4), r.u32(g+8)
			if lo > hi || hi > 0x10FFFF {
				return fmt.Errorf("cmap: group %d has code points %#x…%#x", i, lo, hi)
			}
			f.cmap = append(f.cmap, cmapRange{lo: rune(lo), hi: rune(hi), glyph: glyph})
		}
	case 4:
		segs := r.u16(best+6) / 2
		ends, starts, deltas, rangeOffs := best+14, best+16+2*segs, best+16+4*segs, best+16+6*segs
		mapped := 0
		for i := 0; i < segs; i++ {
			end, start := r.u16(ends+2*i), r.u16(starts+2*i)
			delta, ro := r.u16(deltas+2*i), r.u16(rangeOffs+2*i)
			if r.err != nil {
				return fmt.Errorf("cmap format 4: %w", r.err)
			}
			if start > end || start == 0xFFFF {
				continue
			}
			// Segments of a valid table do not overlap: at most 65536 code points.
			if mapped += end - start + 1; mapped > 1<<16 {
				return errors.New("cmap format 4: overlapping segments map more than 65536 code points")
			}
			for c := start; c <= end; c++ {
				var g int
				if ro == 0 {
					g = (c + delta) & 0xFFFF
				} else {
					gi := r.u16(rangeOffs + 2*i + ro + 2*(c-start))
					if gi != 0 {
						g = (gi + delta) & 0xFFFF
					}
				}
				if r.err != nil {
					return fmt.Errorf("cmap format 4: %w", r.err)
				}
				if g != 0 {
					f.cmap = append(f.cmap, cmapRange{lo: rune(c), hi: rune(c), glyph: uint32(g)})
				}
			}
		}
	}
	return r.err
}

// glyph maps a code point through the cmap (0: not in the font).
func (f *Font) glyph(c rune) uint16 {
	for _, g := range f.cmap {
		if c >= g.lo && c <= g.hi {
			v := g.glyph + uint32(c-g.lo)
			if v > 0xFFFF {
				return 0
			}
			return uint16(v)
		}
	}
	return 0
}

// maxBitmapGlyphs bounds the glyphs an index subtable may list.
const maxBitmapGlyphs = 1 << 16

func (f *Font) parseCBLC(r *reader, cbdtLen int) error {
	if major := r.u16(0); major != 3 && major != 2 {
		if r.err != nil {
			return fmt.Errorf("CBLC: %w", r.err)
		}
		return fmt.Errorf("CBLC: version %d, want 2 or 3", major)
	}
	n := int(r.u32(4))
	if n < 1 || 8+48*n > len(r.b) {
		return fmt.Errorf("CBLC: %d bitmap strikes in %d bytes", n, len(r.b))
	}
	for s := 0; s < n; s++ {
		b := 8 + 48*s
		arrOff, nSub := int(r.u32(b)), int(r.u32(b+8))
		ppem := r.u8(b + 44)
		if r.err != nil {
			return fmt.Errorf("CBLC: %w", r.err)
		}
		if nSub < 1 || nSub > maxBitmapGlyphs || arrOff+8*nSub > len(r.b) {
			return fmt.Errorf("CBLC: strike %d declares %d index subtables at %d, past the table's %d bytes", s, nSub, arrOff, len(r.b))
		}
		if ppem <= f.strike.ppem {
			continue
		}
		st := strike{ppem: ppem}
		listed := 0
		for k := 0; k < nSub; k++ {
			a := arrOff + 8*k
			first, last, add := r.u16(a), r.u16(a+2), int(r.u32(a+4))
			h := arrOff + add
			indexFormat, imageFormat, imageOff := r.u16(h), r.u16(h+2), r.u32(h+4)
			if r.err != nil {
				return fmt.Errorf("CBLC: strike %d, subtable %d: %w", s, k, r.err)
			}
			if first > last {
				return fmt.Errorf("CBLC: strike %d, subtable %d covers glyphs %d…%d", s, k, first, last)
			}
			cnt := last - first + 2
			// Subtables of a valid strike cover each glyph once.
			if listed += cnt; listed > 2*maxBitmapGlyphs {
				return fmt.Errorf("CBLC: strike %d's subtables list more than %d glyphs", s, maxBitmapGlyphs)
			}
			sub := indexSub{first: uint16(first), last: uint16(last), imageFormat: uint16(imageFormat)}
			switch indexFormat {
			case 1:
				if h+8+4*cnt > len(r.b) {
					return fmt.Errorf("CBLC: subtable %d's %d offsets lie past the table", k, cnt)
				}
				for i := 0; i < cnt; i++ {
					sub.offsets = append(sub.offsets, imageOff+r.u32(h+8+4*i))
				}
			case 3:
				if h+8+2*cnt > len(r.b) {
					return fmt.Errorf("CBLC: subtable %d's %d offsets lie past the table", k, cnt)
				}
				for i := 0; i < cnt; i++ {
					sub.offsets = append(sub.offsets, imageOff+uint32(r.u16(h+8+2*i)))
				}
			default:
				continue // formats 2, 4, 5 hold fixed-size or sparse images, unused by colour fonts
			}
			for i, o := range sub.offsets {
				if int64(o) > int64(cbdtLen) || (i > 0 && o < sub.offsets[i-1]) {
					return fmt.Errorf("CBLC: subtable %d: image offset %d of glyph %d out of order or past CBDT's %d bytes", k, o, first+i, cbdtLen)
				}
			}
			st.subs = append(st.subs, sub)
		}
		f.strike = st
	}
	if f.strike.ppem == 0 {
		return errors.New("CBLC: no bitmap strike")
	}
	return nil
}

// maxLigatures bounds the ligatures GSUB may declare, and maxGSUBWork the
// subtables and covered glyphs it may make the parser visit (a hostile table
// can point many lookups at one large subtable).
const (
	maxLigatures = 1 << 20
	maxGSUBWork  = 1 << 22
)

func (f *Font) parseGSUB(r *reader) error {
	f.ligs = map[uint16][]ligature{}
	lookups := r.u16(8)
	nl := r.u16(lookups)
	total, work := 0, 0
	for i := 0; i < nl; i++ {
		lo := lookups + r.u16(lookups+2+2*i)
		typ, nsub := r.u16(lo), r.u16(lo+4)
		for s := 0; s < nsub; s++ {
			if work++; work > maxGSUBWork {
				return fmt.Errorf("GSUB: more than %d subtables and covered glyphs to read", maxGSUBWork)
			}
			so := lo + r.u16(lo+6+2*s)
			t := typ
			if t == 7 { // extension: the real subtable is 32-bit offset away
				t = r.u16(so + 2)
				so += int(r.u32(so + 4))
			}
			if r.err != nil {
				return fmt.Errorf("GSUB: %w", r.err)
			}
			if t != 4 || r.u16(so) != 1 {
				continue
			}
			cov := coverage(r, so+r.u16(so+2))
			nset := r.u16(so + 4)
			if work += len(cov); work > maxGSUBWork {
				return fmt.Errorf("GSUB: more than %d subtables and covered glyphs to read", maxGSUBWork)
			}
			if r.err != nil {
				return fmt.Errorf("GSUB: %w", r.err)
			}
			if len(cov) != nset {
				return fmt.Errorf("GSUB: ligature subtable has %d sets for %d covered glyphs", nset, len(cov))
			}
			for k, first := range cov {
				set := so + r.u16(so+6+2*k)
				nlig := r.u16(set)
				for j := 0; j < nlig; j++ {
					lg := set + r.u16(set+2+2*j)
					glyph, comps := r.u16(lg), r.u16(lg+2)
					if comps < 1 || comps > 64 {
						return fmt.Errorf("GSUB: ligature of %d components", comps)
					}
					rest := make([]uint16, comps-1)
					for c := range rest {
						rest[c] = uint16(r.u16(lg + 4 + 2*c))
					}
					if r.err != nil {
						return fmt.Errorf("GSUB: %w", r.err)
					}
					total++
					if total > maxLigatures {
						return fmt.Errorf("GSUB: more than %d ligatures", maxLigatures)
					}
					f.ligs[first] = append(f.ligs[first], ligature{rest: rest, glyph: uint16(glyph)})
				}
			}
		}
	}
	return r.err
}

// coverage reads a Coverage table (formats 1 and 2) as its glyph list.
func coverage(r *reader, off int) []uint16 {
	var out []uint16
	switch r.u16(off) {
	case 1:
		n := r.u16(off + 2)
		for i := 0; i < n && r.err == nil; i++ {
			out = append(out, uint16(r.u16(off+4+2*i)))
		}
	case 2:
		n := r.u16(off + 2)
		for i := 0; i < n && r.err == nil; i++ {
			lo, hi := r.u16(off+4+6*i), r.u16(off+6+6*i)
			if hi < lo || len(out)+hi-lo > maxBitmapGlyphs {
				r.fail(off, 0)
				return nil
			}
			for g := lo; g <= hi; g++ {
				out = append(out, uint16(g))
			}
		}
	default:
		r.fail(off, 2)
	}
	return out
}

// Glyph returns the glyph that shows seq: one code point through the cmap,
// or a sequence through the GSUB ligatures (variation selector U+FE0F is
// dropped where the font has no glyph for it).
func (f *Font) Glyph(seq string) (uint16, error) {
	var gs []uint16
	for _, c := range seq {
		g := f.glyph(c)
		if g == 0 {
			if c == 0xFE0F {
				continue
			}
			return 0, fmt.Errorf("emoji font %s: no glyph for U+%04X in %q", f.name, c, seq)
		}
		gs = append(gs, g)
	}
	switch len(gs) {
	case 0:
		return 0, fmt.Errorf("emoji font %s: empty emoji %q", f.name, seq)
	case 1:
		return gs[0], nil
	}
	// Apply the ligatures until one glyph is left (each step shortens).
	for len(gs) > 1 {
		merged := false
	scan:
		for i := range gs {
			for _, l := range f.ligs[gs[i]] {
				if i+1+len(l.rest) <= len(gs) && equal(gs[i+1:i+1+len(l.rest)], l.rest) && len(l.rest) > 0 {
					gs = append(append(gs[:i:i], l.glyph), gs[i+1+len(l.rest):]...)
					merged = true
					break scan
				}
			}
		}
		if !merged {
			return 0, fmt.Errorf("emoji font %s: the sequence %q is not one glyph in this font", f.name, seq)
		}
	}
	return gs[0], nil
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// PPEM returns the size of the bitmap strike in pixels per em.
func (f *Font) PPEM() int { return f.strike.ppem }

// Bitmap decodes the colour bitmap of glyph g (CBDT image formats 17, 18
// and 19: PNG with small, big or no metrics).
func (f *Font) Bitmap(g uint16) (image.Image, error) {
	for _, s := range f.strike.subs {
		if g < s.first || g > s.last {
			continue
		}
		i := int(g - s.first)
		start, end := int(s.offsets[i]), int(s.offsets[i+1])
		if end <= start {
			return nil, fmt.Errorf("emoji font %s: glyph %d has no bitmap", f.name, g)
		}
		r := &reader{b: f.data[start:end], what: fmt.Sprintf("CBDT image of glyph %d", g)}
		var pngAt int
		switch s.imageFormat {
		case 17:
			pngAt = 5
		case 18:
			pngAt = 8
		case 19:
			pngAt = 0
		default:
			return nil, fmt.Errorf("emoji font %s: glyph %d has image format %d (only the PNG formats 17, 18, 19 are read)", f.name, g, s.imageFormat)
		}
		n := int(r.u32(pngAt))
		body := r.sub(pngAt+4, n, r.what)
		if r.err != nil {
			return nil, fmt.Errorf("emoji font %s: %w", f.name, r.err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(body.b))
		if err != nil {
			return nil, fmt.Errorf("emoji font %s: glyph %d: %w", f.name, g, err)
		}
		if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > MaxBitmapSide || cfg.Height > MaxBitmapSide {
			return nil, fmt.Errorf("emoji font %s: glyph %d is a %dx%d bitmap (at most %d a side)", f.name, g, cfg.Width, cfg.Height, MaxBitmapSide)
		}
		img, err := png.Decode(bytes.NewReader(body.b))
		if err != nil {
			return nil, fmt.Errorf("emoji font %s: glyph %d: %w", f.name, g, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("emoji font %s: glyph %d has no bitmap in the %d-ppem strike", f.name, g, f.strike.ppem)
}

// Emoji returns the bitmap that shows seq.
func (f *Font) Emoji(seq string) (image.Image, error) {
	g, err := f.Glyph(seq)
	if err != nil {
		return nil, err
	}
	return f.Bitmap(g)
}
