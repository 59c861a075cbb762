package vae

import (
	"math"
	"testing"
)

// Expected values from PyTorch: (lat @ F).clamp(-1, 1) and
// torch.clamp(127.5*x+128, 0, 255).to(torch.uint8), float32.
func TestPreview(t *testing.T) {
	// Four latent pixels (B=2, H=1, W=2), written channel-first.
	pix := [4][4]float32{{1, 0, 0, 0}, {0.5, -0.5, 1, 2}, {3, 2, 1, -1}, {0.1, 0.2, 0.3, 0.4}}
	lat := make([]float32, 2*4*1*2)
	for p, v := range pix {
		b, x := p/2, p%2
		for c := 0; c < 4; c++ {
			lat[b*8+c*2+x] = v[c]
		}
	}
	orig := append([]float32(nil), lat...)
	want := [3][4]float64{ // [rgb][pixel]
		{0.35120001435279846, -0.6937999725341797, 1.0, -0.06955000758171082},
		{0.2296999990940094, -0.4808499813079834, 1.0, 0.0706700012087822},
		{0.32269999384880066, -1.0, 1.0, -0.1261800080537796},
	}
	got := Preview(lat, 2, 1, 2)
	if len(got) != 2*3*2 {
		t.Fatalf("len %d, want 12", len(got))
	}
	for p := 0; p < 4; p++ {
		b, x := p/2, p%2
		for c := 0; c < 3; c++ {
			g := float64(got[b*6+c*2+x])
			if !(math.Abs(g-want[c][p]) <= 1e-6) {
				t.Errorf("pixel %d channel %d: got %v, want %v", p, c, g, want[c][p])
			}
		}
	}
	for i := range lat {
		if lat[i] != orig[i] {
			t.Fatal("Preview modified its input")
		}
	}
	if Preview(lat[:7], 2, 1, 2) != nil {
		t.Error("short latent: want nil")
	}
	if Preview(lat, -1, 1, 2) != nil {
		t.Error("negative size: want nil")
	}
	if err := PreviewInto(make([]float32, 5), lat, 2, 1, 2); err == nil {
		t.Error("short dst: want error")
	}
	nan := Preview([]float32{float32(math.NaN()), 0, 0, 0}, 1, 1, 1)
	for _, v := range nan {
		if v != 0 {
			t.Errorf("NaN latent: got %v, want 0", v)
		}
	}
}

func TestToUint8(t *testing.T) {
	in := []float32{-1, 1, 0, -0.2, 0.5, -0.9960784, 0.9960784, 2, -3, 0.003921569, -0.003921569, 0.00392156}
	want := []uint8{0, 255, 128, 102, 191, 1, 255, 255, 0, 128, 127, 128}
	got := ToUint8(in)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ToUint8(%v) = %d, want %d", in[i], got[i], want[i])
		}
	}
	inf := ToUint8([]float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))})
	if inf[0] != 0 || inf[1] != 255 || inf[2] != 0 {
		t.Errorf("NaN/+Inf/-Inf: got %v, want [0 255 0]", inf)
	}
}

func TestImagesAndGrid(t *testing.T) {
	// Two 1x2 images; channel-first.
	img := []float32{-1, 1, 0, 0.5, 1, -1, 0, 0, 0, 0, 0, 0}
	ims, err := Images(img, 2, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Image 0, pixel 0: R=-1, G=0, B=1 -> (0, 128, 255); pixel 1: (255, 191, 0).
	want := []uint8{0, 128, 255, 255, 255, 191, 0, 255}
	for i, v := range want {
		if ims[0].Pix[i] != v {
			t.Fatalf("image 0 Pix[%d] = %d, want %d", i, ims[0].Pix[i], v)
		}
	}
	g := Grid(ims, 1, 1)
	if g.Bounds().Dx() != 2 || g.Bounds().Dy() != 3 {
		t.Fatalf("grid size %v, want 2x3", g.Bounds())
	}
	if g.Pix[2*g.Stride] != 128 || g.Pix[g.Stride] != 0 || g.Pix[g.Stride+3] != 255 {
		t.Errorf("grid layout wrong: %v", g.Pix)
	}
	if _, err := Images(img[:5], 2, 1, 2); err == nil {
		t.Error("short input: want an error")
	}
}
