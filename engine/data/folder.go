package data

import (
	"fmt"
	"image"
	_ "image/gif" // decoders for LoadFolder
	_ "image/jpeg"
	_ "image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/image/draw"

	"geca/internal/membudget"
	"geca/internal/safefile"
)

// maxImagePixels bounds the decoded size of one input image.
const maxImagePixels = 64 << 20

// LoadFolder loads a folder of images whose subfolders are the classes (sorted
// by name; label = index). Each image is centre-cropped to a square, resized
// to size×size (Catmull-Rom) and mapped to [−1, 1]; channels is 1 (gray) or 3
// (RGB). Files that are not images are an error naming the file.
func LoadFolder(dir string, size, channels int) (*Dataset, error) {
	if err := checkFolderArgs(size, channels); err != nil {
		return nil, err
	}
	classes, files, err := listFolder(dir)
	if err != nil {
		return nil, err
	}
	if err := membudget.Check(fmt.Sprintf("%s: %d images of %dx%dx%d", dir, len(files), size, size, channels),
		membudget.Bytes(len(files), size, size, channels, 4)); err != nil {
		return nil, err
	}
	d := &Dataset{H: size, W: size, C: channels, Classes: classes}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	px := make([]float32, size*size*channels)
	for _, f := range files {
		if err := readScaled(f.path, dst, px, channels, false); err != nil {
			return nil, err
		}
		d.Pixels = append(d.Pixels, px...)
		d.Labels = append(d.Labels, f.label)
		d.N++
	}
	return d, d.Validate()
}

func checkFolderArgs(size, channels int) error {
	if size < 1 || size > 1024 {
		return fmt.Errorf("image size %d out of range [1, 1024]", size)
	}
	if channels != 1 && channels != 3 {
		return fmt.Errorf("channels must be 1 or 3, got %d", channels)
	}
	return nil
}

// folderFile is one image of a class folder.
type folderFile struct {
	path  string
	label int
}

// listFolder returns the class names (subfolders, sorted) and the image
// files of each class in name order.
func listFolder(dir string) ([]string, []folderFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var classes []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			classes = append(classes, e.Name())
		}
	}
	sort.Strings(classes)
	if len(classes) == 0 {
		return nil, nil, fmt.Errorf("%s: no class subfolders (put the images of each class in their own subfolder)", dir)
	}
	var out []folderFile
	for label, cls := range classes {
		files, err := os.ReadDir(filepath.Join(dir, cls))
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			switch strings.ToLower(filepath.Ext(f.Name())) {
			case ".png", ".jpg", ".jpeg", ".gif":
			default:
				continue
			}
			p := filepath.Join(dir, cls, f.Name())
			// A named pipe or a device called x.png would hang or never end
			// the read: only regular files (or links to them) are images.
			if err := safefile.CheckRegular(p); err != nil {
				return nil, nil, err
			}
			out = append(out, folderFile{path: p, label: label})
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("%s: no .png, .jpg or .gif images in the class subfolders %v", dir, classes)
	}
	return classes, out, nil
}

// readScaled decodes the image at path, centre-crops it to a square, resizes
// it into dst (size×size) and writes its pixels in [−1, 1] to px: cell-major
// (pixel, then channel), or channel-first (channel planes) when planar.
func readScaled(path string, dst *image.RGBA, px []float32, channels int, planar bool) error {
	img, err := decodeImage(path)
	if err != nil {
		return err
	}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	at := image.Pt(b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2)
	crop := image.Rectangle{Min: at, Max: at.Add(image.Pt(side, side))}
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, crop, draw.Src, nil)
	n := dst.Bounds().Dx() * dst.Bounds().Dy()
	for i := 0; i < n; i++ {
		p := dst.Pix[4*i : 4*i+3]
		if channels == 1 {
			g := (299*float32(p[0]) + 587*float32(p[1]) + 114*float32(p[2])) / 1000
			px[i] = g/127.5 - 1
			continue
		}
		for c, v := range p {
			if planar {
				px[c*n+i] = float32(v)/127.5 - 1
			} else {
				px[3*i+c] = float32(v)/127.5 - 1
			}
		}
	}
	return nil
}

func decodeImage(path string) (image.Image, error) {
	f, _, err := safefile.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a readable image: %v", path, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width*cfg.Height > maxImagePixels {
		return nil, fmt.Errorf("%s: image size %dx%d out of range", path, cfg.Width, cfg.Height)
	}
	// Decoded at up to 8 bytes a pixel (16-bit RGBA).
	if err := membudget.Check(fmt.Sprintf("%s: a %dx%d image", path, cfg.Width, cfg.Height), membudget.Bytes(cfg.Width, cfg.Height, 8)); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return img, nil
}
