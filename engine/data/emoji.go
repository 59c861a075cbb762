package data

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"strings"

	"golang.org/x/image/draw"

	"geca/engine/data/emojifont"
)

// EmojiFontPath is where Debian's fonts-noto-color-emoji installs the Noto
// Color Emoji font.
const EmojiFontPath = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"

// EmojiSet is a named list of emoji, one class each, with the names the
// viewer shows for the classes.
type EmojiSet struct {
	Emoji []string
	Names []string
}

// EmojiSets are the named sets of the teaching model. "garden" is the
// built-in emoji model's: the lizard of the classic growing-NCA demo among
// animals and plants of distinct colours and shapes.
var EmojiSets = map[string]EmojiSet{
	"garden": {
		Emoji: []string{"🦎", "🦋", "🌵", "🐙", "🍄", "🌻", "🐠", "🐞", "🍎", "🐳"},
		Names: []string{"lizard", "butterfly", "cactus", "octopus", "mushroom", "sunflower", "tropical fish", "lady beetle", "red apple", "spouting whale"},
	},
}

// EmojiOptions says how emoji become training images.
type EmojiOptions struct {
	Size       int         // grid side in pixels (the emoji is scaled to fit, keeping its aspect)
	Background color.NRGBA // composited under the emoji's transparency
	// Variants is the number of images per emoji: the first is the emoji
	// centred; the others are shifted by up to Shift pixels in each
	// direction (drawn from Seed). Shifts are the one augmentation: they keep
	// the target recognisable and the colours exact, and make the model learn
	// a shape it can grow anywhere near the centre rather than one fixed
	// image, which gives the samples visible variety.
	Variants int
	Shift    int
	Seed     uint64
}

// ParseEmojiList reads a comma-separated list of emoji (each a code point
// or a sequence) or the name of one of EmojiSets.
func ParseEmojiList(s string) ([]string, error) {
	if set, ok := EmojiSets[strings.ToLower(strings.TrimSpace(s))]; ok {
		return set.Emoji, nil
	}
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no emoji in %q (give a comma-separated list or a set: garden)", s)
	}
	return out, nil
}

// LoadEmoji renders each emoji of list from the colour emoji font at
// fontPath (empty: EmojiFontPath) as one class of RGB training images with
// pixels in [−1, 1].
func LoadEmoji(fontPath string, list []string, opt EmojiOptions) (*Dataset, error) {
	if fontPath == "" {
		fontPath = EmojiFontPath
	}
	if opt.Size < 4 || opt.Size > 512 {
		return nil, fmt.Errorf("emoji: size %d out of range [4, 512]", opt.Size)
	}
	if opt.Variants < 1 || opt.Variants > 10000 || opt.Shift < 0 || opt.Shift > opt.Size/4 {
		return nil, fmt.Errorf("emoji: %d variants with shifts of %d pixels (want 1…10000 variants, shifts up to a quarter of the size)", opt.Variants, opt.Shift)
	}
	if len(list) < 1 || len(list) > 1000 {
		return nil, fmt.Errorf("emoji: %d emoji (want 1…1000)", len(list))
	}
	font, err := emojifont.Open(fontPath)
	if err != nil {
		return nil, fmt.Errorf("%w (Debian: apt-get install fonts-noto-color-emoji)", err)
	}
	s := opt.Size
	ds := &Dataset{N: len(list) * opt.Variants, H: s, W: s, C: 3, Classes: list}
	ds.Pixels = make([]float32, 0, ds.N*s*s*3)
	r := rand.New(rand.NewPCG(opt.Seed, 0x656d6f6a69))
	for k, e := range list {
		img, err := font.Emoji(e)
		if err != nil {
			return nil, err
		}
		base := EmojiImage(img, s, opt.Background)
		for v := 0; v < opt.Variants; v++ {
			dx, dy := 0, 0
			if v > 0 && opt.Shift > 0 {
				dx, dy = r.IntN(2*opt.Shift+1)-opt.Shift, r.IntN(2*opt.Shift+1)-opt.Shift
			}
			ds.Pixels = appendShifted(ds.Pixels, base, dx, dy, opt.Background)
			ds.Labels = append(ds.Labels, k)
		}
	}
	return ds, ds.Validate()
}

// EmojiImage composites a glyph bitmap over bg, centred in a square, and
// scales it to size×size with a Catmull-Rom filter. Compositing first means
// the filter never mixes in the colour of transparent pixels.
func EmojiImage(glyph image.Image, size int, bg color.NRGBA) *image.RGBA {
	b := glyph.Bounds()
	side := max(b.Dx(), b.Dy())
	square := image.NewRGBA(image.Rect(0, 0, side, side))
	draw.Draw(square, square.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
	off := image.Pt((side-b.Dx())/2, (side-b.Dy())/2)
	draw.Draw(square, b.Sub(b.Min).Add(off), glyph, b.Min, draw.Over)
	out := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.CatmullRom.Scale(out, out.Bounds(), square, square.Bounds(), draw.Src, nil)
	return out
}

// appendShifted appends img moved by (dx, dy), filling the uncovered edge
// with bg, as cell-major RGB in [−1, 1].
func appendShifted(px []float32, img *image.RGBA, dx, dy int, bg color.NRGBA) []float32 {
	s := img.Bounds().Dx()
	for i := 0; i < s; i++ {
		for j := 0; j < s; j++ {
			si, sj := i-dy, j-dx
			c := [3]uint8{bg.R, bg.G, bg.B}
			if si >= 0 && si < s && sj >= 0 && sj < s {
				o := img.PixOffset(sj, si)
				c = [3]uint8{img.Pix[o], img.Pix[o+1], img.Pix[o+2]}
			}
			for _, v := range c {
				px = append(px, float32(v)/127.5-1)
			}
		}
	}
	return px
}
