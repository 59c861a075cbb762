package emojifont

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"sort"
	"strings"
	"testing"
)

// be appends big-endian values.
type be struct{ b []byte }

func (w *be) u8(v int)  { w.b = append(w.b, byte(v)) }
func (w *be) u16(v int) { w.b = binary.BigEndian.AppendUint16(w.b, uint16(v)) }
func (w *be) u32(v int) { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }

func pngOf(t testing.TB, w, h int, c color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Set(i%w, i/w, c)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testFont builds a small colour bitmap font: glyph 1 = 'A' (red 4x3,
// image format 17), glyph 2 = 'B' (blue, format 19), glyph 3 = the
// ligature "AB" (green, format 17). cmap of format 12 (or 4), CBLC with
// one strike of index format 1 (or 3), GSUB with one ligature lookup.
func testFont(t testing.TB, cmap4, index3 bool) []byte {
	imgs := [][]byte{pngOf(t, 4, 3, color.RGBA{255, 0, 0, 255}), pngOf(t, 5, 5, color.RGBA{0, 0, 255, 255}), pngOf(t, 2, 2, color.RGBA{0, 255, 0, 255})}
	formats := []int{17, 19, 17}
	// CBDT
	cbdt := &be{}
	cbdt.u16(3)
	cbdt.u16(0)
	offs := []int{}
	for i, p := range imgs {
		offs = append(offs, len(cbdt.b))
		if formats[i] == 17 {
			for j := 0; j < 5; j++ {
				cbdt.u8(8)
			}
		}
		cbdt.u32(len(p))
		cbdt.b = append(cbdt.b, p...)
	}
	offs = append(offs, len(cbdt.b))
	// CBLC: header, one 48-byte strike record, then the index subtable array
	// of two subtables (glyphs 1-2 format 17/19 cannot share one subtable, so:
	// [1,1] format 17, [2,2] format 19, [3,3] format 17).
	cblc := &be{}
	cblc.u16(3)
	cblc.u16(0)
	cblc.u32(1)
	arrOff := 8 + 48
	cblc.u32(arrOff)
	cblc.u32(0) // size, unused
	cblc.u32(3) // subtables
	cblc.u32(0)
	cblc.b = append(cblc.b, make([]byte, 24)...) // hori, vert line metrics
	cblc.u16(1)
	cblc.u16(3)
	cblc.u8(20) // ppemX
	cblc.u8(20) // ppemY
	cblc.u8(32)
	cblc.u8(1)
	subStart := arrOff + 3*8
	var subs []byte
	for g := 1; g <= 3; g++ {
		cblc.u16(g)
		cblc.u16(g)
		cblc.u32(subStart - arrOff + len(subs))
		s := &be{}
		if index3 {
			s.u16(3)
		} else {
			s.u16(1)
		}
		s.u16(formats[g-1])
		s.u32(offs[g-1])
		if index3 {
			s.u16(0)
			s.u16(offs[g] - offs[g-1])
			s.u16(0) // pad to 4 bytes
		} else {
			s.u32(0)
			s.u32(offs[g] - offs[g-1])
		}
		subs = append(subs, s.b...)
	}
	cblc.b = append(cblc.b, subs...)
	// cmap
	cm := &be{}
	cm.u16(0)
	cm.u16(1)
	cm.u16(3)
	if cmap4 {
		cm.u16(1)
		cm.u32(12)
		// format 4: segments [A,B] delta so A→1, and the final 0xFFFF.
		cm.u16(4)
		cm.u16(32)
		cm.u16(0)
		cm.u16(4) // segCountX2
		cm.u16(4)
		cm.u16(1)
		cm.u16(0)
		cm.u16('B')
		cm.u16(0xFFFF)
		cm.u16(0)
		cm.u16('A')
		cm.u16(0xFFFF)
		cm.u16((1 - 'A') & 0xFFFF)
		cm.u16(1)
		cm.u16(0)
		cm.u16(0)
	} else {
		cm.u16(10)
		cm.u32(12)
		cm.u16(12)
		cm.u16(0)
		cm.u32(16 + 12)
		cm.u32(0)
		cm.u32(1)
		cm.u32('A')
		cm.u32('B')
		cm.u32(1)
	}
	// GSUB: header, script list (empty), feature list (empty), lookup list
	// with one type-4 lookup: coverage [1], one ligature set {1,2}→3.
	gs := &be{}
	gs.u16(1)
	gs.u16(0)
	gs.u16(10)
	gs.u16(12)
	gs.u16(14)
	gs.u16(0) // script count
	gs.u16(0) // feature count
	// lookup list at 14
	gs.u16(1)
	gs.u16(4) // lookup at 14+4 = 18
	gs.u16(4) // type
	gs.u16(0) // flag
	gs.u16(1) // subtables
	gs.u16(8) // subtable at 18+8 = 26
	// ligature subst at 26: format, coverage offset, set count, set offset
	gs.u16(1)
	gs.u16(8)
	gs.u16(1)
	gs.u16(14)
	// coverage at 26+8 = 34: format 1, count 1, glyph 1
	gs.u16(1)
	gs.u16(1)
	gs.u16(1)
	// ligature set at 26+14 = 40: count 1, offset 4 → ligature at 44
	gs.u16(1)
	gs.u16(4)
	gs.u16(3) // ligature glyph
	gs.u16(2) // components
	gs.u16(2)
	tables := map[string][]byte{"CBDT": cbdt.b, "CBLC": cblc.b, "cmap": cm.b, "GSUB": gs.b}
	tags := []string{}
	for k := range tables {
		tags = append(tags, k)
	}
	sort.Strings(tags)
	out := &be{}
	out.u32(0x00010000)
	out.u16(len(tags))
	out.u16(0)
	out.u16(0)
	out.u16(0)
	off := 12 + 16*len(tags)
	var body []byte
	for _, tag := range tags {
		out.b = append(out.b, tag...)
		out.u32(0)
		out.u32(off + len(body))
		out.u32(len(tables[tag]))
		body = append(body, tables[tag]...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
	}
	return append(out.b, body...)
}

func TestSmallFont(t *testing.T) {
	for ci, c := range []struct{ cmap4, index3 bool }{{false, false}, {true, true}, {true, false}, {false, true}} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			f, err := Parse("test.ttf", testFont(t, c.cmap4, c.index3))
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			if f.PPEM() != 20 {
				t.Errorf("ppem %d", f.PPEM())
			}
			for _, e := range []struct {
				seq  string
				w, h int
				c    color.RGBA
			}{{"A", 4, 3, color.RGBA{255, 0, 0, 255}}, {"B", 5, 5, color.RGBA{0, 0, 255, 255}}, {"AB", 2, 2, color.RGBA{0, 255, 0, 255}}, {"A\uFE0F", 4, 3, color.RGBA{255, 0, 0, 255}}} {
				img, err := f.Emoji(e.seq)
				if err != nil {
					t.Fatalf("%+v %q: %v", c, e.seq, err)
				}
				if b := img.Bounds(); b.Dx() != e.w || b.Dy() != e.h {
					t.Errorf("%q: %v, want %dx%d", e.seq, b, e.w, e.h)
				}
				if got := color.RGBAModel.Convert(img.At(1, 1)).(color.RGBA); got != e.c {
					t.Errorf("%q: colour %v, want %v", e.seq, got, e.c)
				}
			}
			for seq, want := range map[string]string{"C": "no glyph for U+0043", "BA": "not one glyph", "": "empty emoji"} {
				if _, err := f.Emoji(seq); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "test.ttf") {
					t.Errorf("Emoji(%q) = %v, want %q naming the file", seq, err, want)
				}
			}
		})
	}
}

// Every truncation and many single-byte corruptions of a valid font give an
// error or a font, never a panic.
func TestHostileFonts(t *testing.T) {
	good := testFont(t, false, false)
	for n := 0; n < len(good); n += 3 {
		if f, err := Parse("cut.ttf", good[:n]); err == nil {
			f.Emoji("AB")
		} else if !strings.Contains(err.Error(), "cut.ttf") {
			t.Fatalf("error does not name the file: %v", err)
		}
	}
	for i := 0; i < len(good); i++ {
		for _, v := range []byte{0, 0xFF, 0x7F, 0x80} {
			b := bytes.Clone(good)
			b[i] = v
			if f, err := Parse("bad.ttf", b); err == nil {
				for _, s := range []string{"A", "B", "AB"} {
					f.Emoji(s)
				}
			}
		}
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "past its end"},
		{"otf", append([]byte("OTTO"), good[4:]...), "not an OpenType font with bitmaps"},
		{"png", pngOf(t, 1, 1, color.RGBA{}), "not an OpenType"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.name, c.b); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want %q", c.name, err, c.want)
			}
		})
	}
	// A PNG header declaring a huge bitmap is refused before decoding.
	huge := testFont(t, false, false)
	i := bytes.Index(huge, []byte("IHDR"))
	binary.BigEndian.PutUint32(huge[i+4:], 1<<20)
	binary.BigEndian.PutUint32(huge[i+17:], crc32.ChecksumIEEE(huge[i:i+17]))
	f, err := Parse("huge.ttf", huge)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Emoji("A"); err == nil || !strings.Contains(err.Error(), "bitmap (at most") {
		t.Errorf("huge bitmap: %v", err)
	}
}

func TestOpenChecksTheFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("folder: %v", err)
	}
	if _, err := Open(dir + "/none.ttf"); err == nil {
		t.Error("missing file opened")
	}
}

// The real Noto Color Emoji font, where Debian's fonts-noto-color-emoji is
// installed.
func TestNotoColorEmoji(t *testing.T) {
	const path = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
	if _, err := os.Stat(path); err != nil {
		t.Skip("fonts-noto-color-emoji is not installed")
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"🦎", "🦋", "🌵", "🐻‍❄️", "🇫🇷", "❤️", "👍🏽"} {
		t.Run(e, func(t *testing.T) {
			img, err := f.Emoji(e)
			if err != nil {
				t.Fatalf("%s: %v", e, err)
			}
			if b := img.Bounds(); b.Dx() < 64 || b.Dy() < 64 {
				t.Errorf("%s: %v", e, b)
			}
		})
	}
	// The lizard is green: its mean colour over opaque pixels.
	img, _ := f.Emoji("🦎")
	var r, g, b, n float64
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.A > 200 {
				r, g, b, n = r+float64(c.R), g+float64(c.G), b+float64(c.B), n+1
			}
		}
	}
	if n == 0 || g/n < r/n+40 || g/n < b/n+40 {
		t.Errorf("lizard mean colour %.0f %.0f %.0f over %.0f pixels: not green", r/n, g/n, b/n, n)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(testFont(f, false, false))
	f.Add(testFont(f, true, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		font, err := Parse("fuzz.ttf", b)
		if err != nil {
			return
		}
		for _, s := range []string{"A", "B", "AB", "🦎"} {
			font.Emoji(s)
		}
	})
}
