package render

import (
	"errors"
	"image"
	"image/color"
	"image/gif"
	"os"
	"path/filepath"
	"testing"
)

// A streamed GIF decodes to the frames given, asks for each frame once
// (plus the palette's sample), and a failure leaves no file behind.
func TestWriteGIFStream(t *testing.T) {
	const n = 7
	asked := map[int]int{}
	frame := func(i int) (image.Image, error) {
		asked[i]++
		img := image.NewRGBA(image.Rect(0, 0, 5, 3))
		for p := 0; p < 15; p++ {
			setPix(img, p, Heat[((i+p)%15)*10]) // every frame uses the same 15 colours
		}
		return img, nil
	}
	path := filepath.Join(t.TempDir(), "a.gif")
	var progress []int
	if err := WriteGIFStream(path, n, frame, 7, func(i int) { progress = append(progress, i) }); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Image) != n || g.Delay[3] != 7 || g.LoopCount != 0 || len(progress) != n || progress[n-1] != n-1 {
		t.Fatalf("%d frames, delay %v, loop %d, progress %v", len(g.Image), g.Delay, g.LoopCount, progress)
	}
	for i := 0; i < n; i++ {
		want, _ := frame(i)
		for p := 0; p < 15; p++ {
			x, y := p%5, p/5
			got := color.RGBAModel.Convert(g.Image[i].At(x, y)).(color.RGBA)
			if got != want.(*image.RGBA).RGBAAt(x, y) {
				t.Fatalf("frame %d pixel (%d,%d) = %v, want %v", i, x, y, got, want.(*image.RGBA).RGBAAt(x, y))
			}
		}
	}
	for i := 0; i < n; i++ {
		extra := 0
		if i == 0 || i == n/2 || i == n-1 {
			extra = 1 // the palette's sample
		}
		if asked[i] != 1+extra+1 { // + the check above
			t.Errorf("frame %d asked %d times", i, asked[i])
		}
	}
	// a frame that fails: no file, not even a partial one
	bad := filepath.Join(t.TempDir(), "b.gif")
	err = WriteGIFStream(bad, n, func(i int) (image.Image, error) {
		if i == 4 {
			return nil, errors.New("boom")
		}
		return frame(i)
	}, 7, nil)
	if err == nil {
		t.Fatal("no error for a failing frame")
	}
	if files, _ := filepath.Glob(filepath.Join(filepath.Dir(bad), "*")); len(files) != 0 {
		t.Errorf("a failed GIF left %v", files)
	}
}

func TestPNGTextRoundTrip(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	path := filepath.Join(t.TempDir(), "a.png")
	text := map[string]string{"geca:M": "12", "geca:checkpoint": "model.pt", "Software": "geca view"}
	if err := WritePNGText(path, img, text); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := PNGText(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["geca:M"] != "12" || got["geca:checkpoint"] != "model.pt" {
		t.Errorf("text chunks %v", got)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	if _, _, err := image.Decode(f); err != nil {
		t.Errorf("the PNG with text does not decode: %v", err)
	}
	if err := WritePNGText(path, img, map[string]string{"": "x"}); err == nil {
		t.Error("an empty keyword accepted")
	}
}
