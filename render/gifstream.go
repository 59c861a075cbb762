package render

import (
	"bufio"
	"compress/lzw"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
)

// GIFFrames produces the frames of an animation one at a time: frame i of
// n, all of the same size. A frame may be dropped as soon as the next is
// asked for.
type GIFFrames func(i int) (image.Image, error)

// WriteGIFStream writes an animated, endlessly looping GIF of n frames to
// path, whole or not at all, holding one frame in memory at a time: the
// palette comes from a sample of the frames (first, middle, last; exact
// when they use at most 256 colours), and each frame is mapped to it and
// encoded as it is made. progress(i) is called after frame i is written.
func WriteGIFStream(path string, n int, frames GIFFrames, delayCS int, progress func(i int)) error {
	if n <= 0 {
		return fmt.Errorf("write %s: no frames", path)
	}
	var sample []image.Image
	seen := map[int]bool{}
	for _, i := range []int{0, n / 2, n - 1} {
		if seen[i] {
			continue
		}
		seen[i] = true
		img, err := frames(i)
		if err != nil {
			return fmt.Errorf("write %s: frame %d: %w", path, i, err)
		}
		sample = append(sample, img)
	}
	pal, _ := Palette(sample, 256)
	size := sample[0].Bounds().Size()
	return writeFile(path, func(w io.Writer) error {
		g, err := newGIFWriter(w, size, pal, delayCS)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			img, err := frames(i)
			if err != nil {
				return fmt.Errorf("frame %d: %w", i, err)
			}
			if err := g.frame(img); err != nil {
				return fmt.Errorf("frame %d: %w", i, err)
			}
			if progress != nil {
				progress(i)
			}
		}
		return g.close()
	})
}

// gifWriter writes a GIF89a with one global palette, frame by frame.
type gifWriter struct {
	w     *bufio.Writer
	size  image.Point
	pal   color.Palette
	delay int
	index map[color.RGBA]uint8 // colour -> palette index (exact or nearest)
	pix   []byte
}

func newGIFWriter(w io.Writer, size image.Point, pal color.Palette, delayCS int) (*gifWriter, error) {
	if size.X <= 0 || size.Y <= 0 || size.X > 65535 || size.Y > 65535 {
		return nil, fmt.Errorf("gif: frame size %v out of range", size)
	}
	if len(pal) == 0 || len(pal) > 256 {
		return nil, errors.New("gif: palette needs 1 to 256 colours")
	}
	g := &gifWriter{w: bufio.NewWriter(w), size: size, pal: pal, delay: max(delayCS, 1), index: map[color.RGBA]uint8{},
		pix: make([]byte, size.X*size.Y)}
	b := g.w
	b.WriteString("GIF89a")
	le16(b, size.X)
	le16(b, size.Y)
	b.WriteByte(0xF7) // global colour table of 256 entries, 8 bits per primary
	b.WriteByte(0)    // background colour index
	b.WriteByte(0)    // pixel aspect ratio
	for i := 0; i < 256; i++ {
		c := color.RGBA{A: 255}
		if i < len(pal) {
			c = color.RGBAModel.Convert(pal[i]).(color.RGBA)
		}
		b.Write([]byte{c.R, c.G, c.B})
	}
	// NETSCAPE2.0: loop forever
	b.Write([]byte{0x21, 0xFF, 0x0B})
	b.WriteString("NETSCAPE2.0")
	b.Write([]byte{0x03, 0x01, 0x00, 0x00, 0x00})
	return g, nil
}

func le16(b *bufio.Writer, v int) { b.Write([]byte{byte(v), byte(v >> 8)}) }

// lookup maps a colour to its palette index, exactly when the palette has
// it, else to the nearest entry (cached).
func (g *gifWriter) lookup(c color.RGBA) uint8 {
	if i, ok := g.index[c]; ok {
		return i
	}
	i := uint8(g.pal.Index(c))
	if len(g.index) < 1<<16 {
		g.index[c] = i
	}
	return i
}

func (g *gifWriter) frame(img image.Image) error {
	b := img.Bounds()
	if b.Size() != g.size {
		return fmt.Errorf("gif: frame is %v, the first was %v", b.Size(), g.size)
	}
	rgba, ok := img.(*image.RGBA)
	for y := 0; y < g.size.Y; y++ {
		for x := 0; x < g.size.X; x++ {
			var c color.RGBA
			if ok {
				o := rgba.PixOffset(b.Min.X+x, b.Min.Y+y)
				c = color.RGBA{rgba.Pix[o], rgba.Pix[o+1], rgba.Pix[o+2], 255}
			} else {
				c = color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				c.A = 255
			}
			g.pix[y*g.size.X+x] = g.lookup(c)
		}
	}
	w := g.w
	// graphic control extension: the delay, no transparency
	w.Write([]byte{0x21, 0xF9, 0x04, 0x00})
	le16(w, g.delay)
	w.Write([]byte{0x00, 0x00})
	// image descriptor: the whole screen, no local colour table
	w.WriteByte(0x2C)
	le16(w, 0)
	le16(w, 0)
	le16(w, g.size.X)
	le16(w, g.size.Y)
	w.WriteByte(0)
	w.WriteByte(8) // LZW minimum code size
	bw := &blockWriter{w: w}
	lw := lzw.NewWriter(bw, lzw.LSB, 8)
	if _, err := lw.Write(g.pix); err != nil {
		return err
	}
	if err := lw.Close(); err != nil {
		return err
	}
	if err := bw.close(); err != nil {
		return err
	}
	return nil
}

func (g *gifWriter) close() error {
	g.w.WriteByte(0x3B)
	return g.w.Flush()
}

// blockWriter splits image data into GIF sub-blocks of at most 255 bytes.
type blockWriter struct {
	w   *bufio.Writer
	buf [255]byte
	n   int
}

func (b *blockWriter) Write(p []byte) (int, error) {
	for i, c := range p {
		b.buf[b.n] = c
		b.n++
		if b.n == len(b.buf) {
			if err := b.flush(); err != nil {
				return i, err
			}
		}
	}
	return len(p), nil
}

func (b *blockWriter) flush() error {
	if b.n == 0 {
		return nil
	}
	b.w.WriteByte(byte(b.n))
	_, err := b.w.Write(b.buf[:b.n])
	b.n = 0
	return err
}

func (b *blockWriter) close() error {
	if err := b.flush(); err != nil {
		return err
	}
	return b.w.WriteByte(0) // block terminator
}
