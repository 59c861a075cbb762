// Package evalset keeps an evaluation-sized sample set on disk: one PNG per
// sample index, written whole as it finishes, beside a settings.json that
// says how every sample is made. A rerun with the same settings skips the
// finished indices; shards of one set, each in its own folder and made
// anywhere, are packed into the single .npz (arr_0, uint8, N×H×W×3) that the
// ADM/guided-diffusion evaluator reads, after checking that together they
// hold every index exactly once and were made with the same settings
// (docs/evaluation.md).
package evalset

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"geca/internal/npy"
	"geca/internal/safefile"
	"geca/internal/shard"
)

// Format names this layout in settings.json.
const Format = "geca-sample-set/1"

// Settings say how every sample of a set is made. Two folders hold parts of
// one set exactly when their Settings are equal.
type Settings struct {
	Format     string  `json:"format"`
	Model      string  `json:"model"`        // the checkpoint's file name
	ModelHash  string  `json:"model_sha256"` // of the checkpoint's bytes
	NumSamples int     `json:"num_samples"`  // indices 0 … N−1
	Seed       uint64  `json:"seed"`         // sample i runs with SampleSeed(Seed, i)
	Classes    string  `json:"classes"`      // how sample i's label is chosen
	Steps      string  `json:"steps"`
	Method     string  `json:"method"`
	CFG        float32 `json:"cfg"`
	M          int     `json:"M"`
	GHG        bool    `json:"ghg"`
	UpdateRate float32 `json:"update_rate"`
	ClipX0     bool    `json:"clip_x0,omitempty"` // absent in sets made before the option existed
	Decoder    string  `json:"decoder"`           // "pixels" or the VAE and its hash
	Height     int     `json:"height"`            // of the images
	Width      int     `json:"width"`
	Channels   int     `json:"channels"` // 1 (grey) or 3 (RGB) in the PNGs; the .npz is always RGB
}

// file is settings.json: the settings and the shard that wrote the folder
// (not part of the comparison).
type file struct {
	Settings
	Shard string `json:"shard"`
}

// SampleSeed is the seed of sample i's own run: a SplitMix64 mix of the
// set's seed and the index, so that any index can be made alone, anywhere.
func SampleSeed(seed uint64, i int) uint64 {
	z := seed + 0x9e3779b97f4a7c15*uint64(i+1)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Folder is one folder of a set.
type Folder struct {
	Dir      string
	Settings Settings
	Shard    shard.Shard
}

const settingsName = "settings.json"

// Open makes dir the folder of s (creating it and settings.json), or checks
// that the folder already there was made with the same settings, so that a
// rerun continues it and a different run is refused rather than mixed in.
func Open(dir string, s Settings, sh shard.Shard) (*Folder, error) {
	s.Format = Format
	if s.NumSamples < 1 || s.Height < 1 || s.Width < 1 || (s.Channels != 1 && s.Channels != 3) {
		return nil, fmt.Errorf("sample set: %d samples of %dx%dx%d", s.NumSamples, s.Height, s.Width, s.Channels)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sample set: %w", err)
	}
	f := &Folder{Dir: dir, Settings: s, Shard: sh}
	old, err := readSettings(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			return nil, fmt.Errorf("sample set: %s is not empty and has no %s: choose an empty or new folder", dir, settingsName)
		}
	case err != nil:
		return nil, err
	default:
		if d := diff(old.Settings, s); d != "" {
			return nil, fmt.Errorf("sample set: %s was made with other settings (%s); use another folder or the same settings", dir, d)
		}
	}
	b, _ := json.MarshalIndent(file{s, sh.String()}, "", "  ")
	if err := safefile.WriteBytes(filepath.Join(dir, settingsName), append(b, '\n')); err != nil {
		return nil, err
	}
	return f, nil
}

func readSettings(dir string) (*file, error) {
	b, err := safefile.ReadFile(filepath.Join(dir, settingsName), 1<<20)
	if err != nil {
		return nil, err
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil || f.Format != Format {
		return nil, fmt.Errorf("sample set: %s: not the settings of a geca sample set (%v)", filepath.Join(dir, settingsName), err)
	}
	return &f, nil
}

// diff names the first fields in which a and b differ ("" if none).
func diff(a, b Settings) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var d []string
	for i := 0; i < va.NumField(); i++ {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			tag := strings.Split(va.Type().Field(i).Tag.Get("json"), ",")[0]
			d = append(d, fmt.Sprintf("%s %v, now %v", tag, va.Field(i).Interface(), vb.Field(i).Interface()))
		}
	}
	return strings.Join(d, "; ")
}

// Name is the file name of sample i in a set of n: zero-padded to at least
// six digits so that names sort by index.
func Name(i, n int) string {
	w := max(6, len(strconv.Itoa(n-1)))
	return fmt.Sprintf("%0*d.png", w, i)
}

// Path returns where sample i goes.
func (f *Folder) Path(i int) string { return filepath.Join(f.Dir, Name(i, f.Settings.NumSamples)) }

// Done reports whether sample i is finished: its PNG is there (it is written
// whole or not at all) with the set's size.
func (f *Folder) Done(i int) bool {
	w, h, err := pngSize(f.Path(i))
	return err == nil && w == f.Settings.Width && h == f.Settings.Height
}

// Todo returns the indices of the folder's shard not yet finished.
func (f *Folder) Todo() []int {
	var out []int
	for _, i := range f.Shard.Items(f.Settings.NumSamples) {
		if !f.Done(i) {
			out = append(out, i)
		}
	}
	return out
}

// Put writes sample i's image, whole or not at all.
func (f *Folder) Put(i int, img image.Image) error {
	if b := img.Bounds(); b.Dx() != f.Settings.Width || b.Dy() != f.Settings.Height {
		return fmt.Errorf("sample set: sample %d is %dx%d, the set's images are %dx%d", i, b.Dx(), b.Dy(), f.Settings.Width, f.Settings.Height)
	}
	return safefile.Write(f.Path(i), func(w io.Writer) error { return png.Encode(w, img) })
}

func pngSize(path string) (int, int, error) {
	r, _, err := safefile.OpenRegular(path)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	c, err := png.DecodeConfig(r)
	return c.Width, c.Height, err
}

// Pack checks that the folders hold one complete set (equal settings, every
// index exactly once) and writes it to out as an .npz of arr_0, uint8, in
// index order (N, H, W, 3; grey images repeated over the three channels).
// progress, if not nil, is called with the number of images packed.
func Pack(dirs []string, out string, progress func(done, total int)) error {
	if len(dirs) == 0 {
		return errors.New("pack: no folders")
	}
	var s Settings
	owner := map[int]string{} // index → folder
	for k, dir := range dirs {
		f, err := readSettings(dir)
		if err != nil {
			return fmt.Errorf("pack: %w", err)
		}
		if k == 0 {
			s = f.Settings
		} else if d := diff(s, f.Settings); d != "" {
			return fmt.Errorf("pack: %s and %s were made with different settings (%s)", dirs[0], dir, d)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("pack: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			if !strings.HasSuffix(name, ".png") || strings.HasPrefix(name, ".") {
				continue
			}
			i, err := strconv.Atoi(strings.TrimSuffix(name, ".png"))
			if err != nil || i < 0 || i >= s.NumSamples || name != Name(i, s.NumSamples) {
				return fmt.Errorf("pack: %s: %s is not a sample of a set of %d", dir, name, s.NumSamples)
			}
			if prev, dup := owner[i]; dup {
				return fmt.Errorf("pack: sample %d is in both %s and %s", i, prev, dir)
			}
			owner[i] = dir
		}
	}
	if len(owner) != s.NumSamples {
		var missing []string
		for i := 0; i < s.NumSamples && len(missing) < 10; i++ {
			if _, ok := owner[i]; !ok {
				missing = append(missing, strconv.Itoa(i))
			}
		}
		return fmt.Errorf("pack: %d of %d samples are missing (first: %s); finish every shard first", s.NumSamples-len(owner), s.NumSamples, strings.Join(missing, ", "))
	}
	idx := make([]int, 0, len(owner))
	for i := range owner {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return safefile.Write(out, func(w io.Writer) error {
		z, err := npy.NewNPZUint8(w, "arr_0", []int{s.NumSamples, s.Height, s.Width, 3})
		if err != nil {
			return err
		}
		row := make([]byte, s.Height*s.Width*3)
		for k, i := range idx {
			path := filepath.Join(owner[i], Name(i, s.NumSamples))
			if err := readRGB(path, row, s.Width, s.Height); err != nil {
				return err
			}
			if _, err := z.Write(row); err != nil {
				return err
			}
			if progress != nil {
				progress(k+1, len(idx))
			}
		}
		return z.Close()
	})
}

// readRGB decodes a PNG of w×h into row as HWC RGB bytes.
func readRGB(path string, row []byte, w, h int) error {
	r, _, err := safefile.OpenRegular(path)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	defer r.Close()
	if c, err := png.DecodeConfig(r); err != nil || c.Width != w || c.Height != h {
		return fmt.Errorf("pack: %s: not a %dx%d PNG (%v)", path, w, h, err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	img, err := png.Decode(r)
	if err != nil {
		return fmt.Errorf("pack: %s: %w", path, err)
	}
	b := img.Bounds()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			cr, cg, cb, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			o := (y*w + x) * 3
			row[o], row[o+1], row[o+2] = byte(cr>>8), byte(cg>>8), byte(cb>>8)
		}
	}
	return nil
}
