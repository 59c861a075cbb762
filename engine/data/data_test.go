package data

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"geca/internal/npy"
)

func idxBytes(dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		b.Write([]byte{byte(d >> 24), byte(d >> 16), byte(d >> 8), byte(d)})
	}
	b.Write(data)
	return b.Bytes()
}

func TestReadIDX(t *testing.T) {
	x, err := ReadIDX(bytes.NewReader(idxBytes([]int{2, 3}, []byte{1, 2, 3, 4, 5, 6})))
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Dims) != 2 || x.Dims[0] != 2 || x.Dims[1] != 3 || x.Data[5] != 6 {
		t.Fatalf("got %+v", x)
	}
	for name, in := range map[string][]byte{
		"empty":       {},
		"bad magic":   {1, 2, 8, 1, 0, 0, 0, 1, 0},
		"float type":  {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0},
		"truncated":   idxBytes([]int{10}, []byte{1, 2}),
		"zero dim":    idxBytes([]int{0}, nil),
		"huge":        idxBytes([]int{1 << 20, 1 << 20}, nil),
		"no dims":     {0, 0, 8, 0},
		"short count": {0, 0, 8, 1, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadIDX(bytes.NewReader(in)); err == nil {
				t.Errorf("%s: no error", name)
			}
		})
	}
}

func TestFashionMNISTFromDir(t *testing.T) {
	dir := t.TempDir()
	imgs := make([]byte, 3*28*28)
	imgs[0], imgs[28*28] = 255, 128
	write := func(name string, b []byte, gz bool) {
		if gz {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			w.Write(b)
			w.Close()
			b = buf.Bytes()
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("t10k-images-idx3-ubyte.gz", idxBytes([]int{3, 28, 28}, imgs), true)
	write("t10k-labels-idx1-ubyte", idxBytes([]int{3}, []byte{9, 0, 4}), false)
	ds, err := LoadFashionMNIST(dir, "t10k")
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 3 || ds.H != 28 || ds.Labels[0] != 9 || ds.Pixels[0] != 1 || ds.Pixels[1] != -1 || ds.Image(1)[0] != float32(128)/127.5-1 {
		t.Fatalf("got N %d labels %v pixels %v %v", ds.N, ds.Labels, ds.Pixels[:2], ds.Image(1)[0])
	}
	p, err := ds.Pad(32, -1)
	if err != nil {
		t.Fatal(err)
	}
	if p.H != 32 || p.Image(0)[2*32+2] != 1 || p.Image(0)[0] != -1 {
		t.Fatalf("padding misplaced the image")
	}
	// Missing files say how to install the package.
	_, err = LoadFashionMNIST(dir, "train")
	if !errors.Is(err, ErrNoFashionMNIST) || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
		t.Fatalf("missing dataset: %v", err)
	}
	// Labels out of range are refused.
	write("t10k-labels-idx1-ubyte", idxBytes([]int{3}, []byte{9, 10, 4}), false)
	if _, err := LoadFashionMNIST(dir, "t10k"); err == nil {
		t.Fatal("label 10 accepted")
	}
}

func TestLoadFolder(t *testing.T) {
	dir := t.TempDir()
	mk := func(cls, name string, w, h int, c color.Color) {
		os.MkdirAll(filepath.Join(dir, cls), 0o755)
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < w; i++ {
			for j := 0; j < h; j++ {
				img.Set(i, j, c)
			}
		}
		// A distinct left strip that the centre crop of a wide image removes.
		for j := 0; j < h && w > h; j++ {
			img.Set(0, j, color.RGBA{0, 0, 255, 255})
		}
		f, _ := os.Create(filepath.Join(dir, cls, name))
		png.Encode(f, img)
		f.Close()
	}
	mk("b_white", "1.png", 40, 20, color.White)
	mk("a_red", "1.png", 20, 20, color.RGBA{255, 0, 0, 255})
	mk("a_red", "2.png", 20, 30, color.RGBA{255, 0, 0, 255})
	os.WriteFile(filepath.Join(dir, "a_red", "notes.txt"), []byte("x"), 0o644)
	ds, err := LoadFolder(dir, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 3 || len(ds.Classes) != 2 || ds.Classes[0] != "a_red" || ds.Labels[2] != 1 {
		t.Fatalf("got %d images, classes %v, labels %v", ds.N, ds.Classes, ds.Labels)
	}
	if px := ds.Image(0)[:3]; px[0] != 1 || px[1] != -1 || px[2] != -1 {
		t.Fatalf("red pixel %v", px)
	}
	for _, v := range ds.Image(2) {
		if v < 0.99 {
			t.Fatalf("white image after centre crop has value %v (the blue strip was not cropped)", v)
		}
	}
	gray, err := LoadFolder(dir, 8, 1)
	if err != nil || gray.C != 1 || len(gray.Pixels) != 3*64 {
		t.Fatalf("gray: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "a_red", "bad.png"), []byte("not a png"), 0o644)
	if _, err := LoadFolder(dir, 8, 3); err == nil || !strings.Contains(err.Error(), "bad.png") {
		t.Fatalf("corrupt image: %v", err)
	}
	if _, err := LoadFolder(t.TempDir(), 8, 3); err == nil {
		t.Fatal("empty folder accepted")
	}
}

func TestLoadLatents(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "features_0"), 0o755)
	os.MkdirAll(filepath.Join(dir, "labels_0"), 0o755)
	for i := 0; i < 3; i++ {
		lat := make([]float32, 4*2*3)
		for k := range lat {
			lat[k] = float32(100*i + k)
		}
		if err := npy.WriteFile(filepath.Join(dir, "features_0", fmt.Sprintf("%d.npy", i)), []int{1, 4, 2, 3}, lat); err != nil {
			t.Fatal(err)
		}
		lab := []float32{0, 0, 0, 0, 0}
		lab[i], lab[4] = 1, 1
		if err := npy.WriteFile(filepath.Join(dir, "labels_0", fmt.Sprintf("%d.npy", i)), []int{1, 5}, lab); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := LoadLatents(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != 3 || ds.C != 4 || ds.H != 2 || ds.W != 3 || len(ds.Classes) != 5 || len(ds.Multi) != 15 {
		t.Fatalf("got %d latents %dx%dx%d, %d classes", ds.N, ds.H, ds.W, ds.C, len(ds.Classes))
	}
	// Cell-major: cell (0, 1) of latent 1 holds channels c·6 + 1.
	if got := ds.Image(1)[1*4 : 2*4]; got[0] != 101 || got[1] != 107 || got[3] != 119 {
		t.Fatalf("cell (0,1) of latent 1: %v", got)
	}
	if ds.Multi[5+1] != 1 || ds.Multi[5+4] != 1 || ds.Multi[5+0] != 0 {
		t.Fatalf("multi-hot label 1: %v", ds.Multi[5:10])
	}
	// classes.txt names the classes when it has one name per class.
	os.WriteFile(filepath.Join(dir, "classes.txt"), []byte("a\nb\nc\nd\ne\n"), 0o644)
	if ds, err := LoadLatents(dir); err != nil || strings.Join(ds.Classes, ",") != "a,b,c,d,e" {
		t.Fatalf("classes.txt: %v, %v", ds.Classes, err)
	}
	os.WriteFile(filepath.Join(dir, "classes.txt"), []byte("a\nb\n"), 0o644)
	if ds, err := LoadLatents(dir); err != nil || strings.Join(ds.Classes, ",") != "0,1,2,3,4" {
		t.Fatalf("classes.txt with too few names: %v, %v", ds.Classes, err)
	}

	nan := make([]float32, 24)
	nan[7] = float32(math.NaN())
	npy.WriteFile(filepath.Join(dir, "features_0", "1.npy"), []int{1, 4, 2, 3}, nan)
	if _, err := LoadLatents(dir); err == nil || !strings.Contains(err.Error(), "1.npy: value 7 is NaN") {
		t.Fatalf("NaN latent: %v", err)
	}
	npy.WriteFile(filepath.Join(dir, "features_0", "1.npy"), []int{1, 4, 2, 3}, make([]float32, 24))
	os.WriteFile(filepath.Join(dir, "labels_0", "2.npy"), []byte("junk"), 0o644)
	if _, err := LoadLatents(dir); err == nil || !strings.Contains(err.Error(), "2.npy") {
		t.Fatalf("corrupt label file: %v", err)
	}
}
