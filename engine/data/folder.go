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
)

// maxImagePixels bounds the decoded size of one input image.
const maxImagePixels = 64 << 20

// LoadFolder loads a folder of images whose subfolders are the classes (sorted
// by name; label = index). Each image is centre-cropped to a square, resized
// to size×size (Catmull-Rom) and mapped to [−1, 1]; channels is 1 (gray) or 3
// (RGB). Files that are not images are an error naming the file.
func LoadFolder(dir string, size, channels int) (*Dataset, error) {
	if size < 1 || size > 1024 {
		return nil, fmt.Errorf("image size %d out of range [1, 1024]", size)
	}
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("channels must be 1 or 3, got %d", channels)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	d := &Dataset{H: size, W: size, C: channels}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			d.Classes = append(d.Classes, e.Name())
		}
	}
	sort.Strings(d.Classes)
	if len(d.Classes) == 0 {
		return nil, fmt.Errorf("%s: no class subfolders (put the images of each class in their own subfolder)", dir)
	}
	dst := image.NewRGBA(image.Rect(0, 0, size, size))
	for label, cls := range d.Classes {
		files, err := os.ReadDir(filepath.Join(dir, cls))
		if err != nil {
			return nil, err
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
			path := filepath.Join(dir, cls, f.Name())
			img, err := decodeImage(path)
			if err != nil {
				return nil, err
			}
			b := img.Bounds()
			side := min(b.Dx(), b.Dy())
			at := image.Pt(b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2)
			crop := image.Rectangle{Min: at, Max: at.Add(image.Pt(side, side))}
			draw.CatmullRom.Scale(dst, dst.Bounds(), img, crop, draw.Src, nil)
			for i := 0; i < size*size; i++ {
				px := dst.Pix[4*i : 4*i+3]
				if channels == 1 {
					g := (299*float32(px[0]) + 587*float32(px[1]) + 114*float32(px[2])) / 1000
					d.Pixels = append(d.Pixels, g/127.5-1)
				} else {
					for _, v := range px {
						d.Pixels = append(d.Pixels, float32(v)/127.5-1)
					}
				}
			}
			d.Labels = append(d.Labels, label)
			d.N++
		}
	}
	if d.N == 0 {
		return nil, fmt.Errorf("%s: no .png, .jpg or .gif images in the class subfolders %v", dir, d.Classes)
	}
	return d, d.Validate()
}

func decodeImage(path string) (image.Image, error) {
	f, err := os.Open(path)
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
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return img, nil
}
