package evalset

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"geca/internal/npy"
	"geca/internal/shard"
)

func settings(n int) Settings {
	return Settings{Model: "m.safetensors", ModelHash: "abc", NumSamples: n, Seed: 3, Classes: "balanced", Steps: "50", CFG: 3, M: 8, GHG: true,
		UpdateRate: 0.5, Decoder: "pixels", Height: 2, Width: 3, Channels: 3}
}

func img(i int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for p := 0; p < 6; p++ {
		m.Set(p%3, p/3, color.RGBA{uint8(i), uint8(p), uint8(i + p), 255})
	}
	return m
}

func TestSampleSeed(t *testing.T) {
	seen := map[uint64]bool{}
	for i := 0; i < 1000; i++ {
		s := SampleSeed(7, i)
		if seen[s] {
			t.Fatalf("seed of sample %d repeats", i)
		}
		seen[s] = true
	}
	if SampleSeed(7, 3) != SampleSeed(7, 3) || SampleSeed(7, 3) == SampleSeed(8, 3) {
		t.Error("SampleSeed is not a function of (seed, index)")
	}
}

// Shards written to their own folders pack into one array in index order;
// gaps, duplicates and mixed settings are refused.
func TestShardsPack(t *testing.T) {
	root := t.TempDir()
	var dirs []string
	for k := 0; k < 3; k++ {
		dir := filepath.Join(root, "s"+string(rune('0'+k)))
		f, err := Open(dir, settings(7), shard.Shard{K: k, N: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range f.Todo() {
			if err := f.Put(i, img(i)); err != nil {
				t.Fatal(err)
			}
		}
		if len(f.Todo()) != 0 {
			t.Fatalf("shard %d not done", k)
		}
		dirs = append(dirs, dir)
	}
	out := filepath.Join(root, "set.npz")
	if err := Pack(dirs, out, nil); err != nil {
		t.Fatal(err)
	}
	arrs, err := npy.ReadNPZ(out)
	if err != nil {
		t.Fatal(err)
	}
	a := arrs["arr_0"]
	if len(a.Shape) != 4 || a.Shape[0] != 7 || a.Shape[1] != 2 || a.Shape[2] != 3 || a.Shape[3] != 3 {
		t.Fatalf("shape %v", a.Shape)
	}
	for i := 0; i < 7; i++ {
		for p := 0; p < 6; p++ {
			o := (i*6 + p) * 3
			if a.Data[o] != float32(i) || a.Data[o+1] != float32(p) || a.Data[o+2] != float32(i+p) {
				t.Fatalf("sample %d pixel %d = %v", i, p, a.Data[o:o+3])
			}
		}
	}
	// A gap.
	os.Remove(filepath.Join(dirs[1], Name(4, 7)))
	if err := Pack(dirs, out, nil); err == nil || !strings.Contains(err.Error(), "1 of 7 samples are missing (first: 4)") {
		t.Errorf("gap: %v", err)
	}
	// A duplicate.
	f1, _ := Open(dirs[1], settings(7), shard.Shard{K: 1, N: 3})
	f1.Put(4, img(4))
	f1.Put(0, img(0))
	if err := Pack(dirs, out, nil); err == nil || !strings.Contains(err.Error(), "sample 0 is in both") {
		t.Errorf("duplicate: %v", err)
	}
	os.Remove(filepath.Join(dirs[1], Name(0, 7)))
	// Mixed settings: another folder of another seed is refused by Open on
	// the same folder and by Pack across folders.
	other := settings(7)
	other.Seed = 4
	if _, err := Open(dirs[0], other, shard.All); err == nil || !strings.Contains(err.Error(), "seed 3, now 4") {
		t.Errorf("reopen with other settings: %v", err)
	}
	od := filepath.Join(root, "other")
	Open(od, other, shard.All)
	if err := Pack([]string{dirs[0], od}, out, nil); err == nil || !strings.Contains(err.Error(), "different settings (seed 3, now 4)") {
		t.Errorf("mixed: %v", err)
	}
	// A foreign file in a folder, and a folder that is not a set.
	os.WriteFile(filepath.Join(dirs[2], "cat.png"), []byte("x"), 0o644)
	if err := Pack(dirs, out, nil); err == nil || !strings.Contains(err.Error(), "cat.png is not a sample") {
		t.Errorf("foreign file: %v", err)
	}
	nonEmpty := filepath.Join(root, "photos")
	os.MkdirAll(nonEmpty, 0o755)
	os.WriteFile(filepath.Join(nonEmpty, "a.jpg"), nil, 0o644)
	if _, err := Open(nonEmpty, settings(7), shard.All); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty folder: %v", err)
	}
	if err := f1.Put(2, image.NewRGBA(image.Rect(0, 0, 5, 5))); err == nil {
		t.Error("wrong size accepted")
	}
}

func TestName(t *testing.T) {
	for _, c := range []struct {
		i, n int
		want string
	}{{3, 10, "000003.png"}, {123, 1000, "000123.png"}, {5, 10000001, "00000005.png"}} {
		if got := Name(c.i, c.n); got != c.want {
			t.Errorf("Name(%d, %d) = %s, want %s", c.i, c.n, got, c.want)
		}
	}
}
