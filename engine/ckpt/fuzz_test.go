package ckpt

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// The fuzz targets run the readers on arbitrary bytes in memory: any panic,
// hang or unbounded allocation is a bug. Seeds are the fixtures; crashers
// found are kept under testdata/fuzz/<Target>/ and rerun by plain go test.
//
//	go test ./engine/ckpt -run '^$' -fuzz FuzzSafetensors -fuzztime 60s -parallel 1
//	go test ./engine/ckpt -run '^$' -fuzz FuzzTorchZip -fuzztime 60s -parallel 1
//	go test ./engine/ckpt -run '^$' -fuzz FuzzPickle -fuzztime 60s -parallel 1

func FuzzSafetensors(f *testing.F) {
	for _, name := range []string{"testdata/mixed.safetensors"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	p := filepath.Join(f.TempDir(), "seed.safetensors")
	w := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))
	if err := SaveSafetensors(p, map[string]*tensor.Dense{"w": w, "b": w}, nil, map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ts map[string]*tensor.Dense
		var names []string
		var err error
		within(t, data, func() { ts, names, _, err = decodeSafetensors(bytes.NewReader(data), int64(len(data))) })
		if err != nil {
			return
		}
		elems := 0
		for _, n := range names {
			elems += ts[n].Shape().TotalSize()
		}
		// Every element takes at least 2 bytes of the file.
		if 2*elems > len(data) || len(names) != len(ts) {
			t.Fatalf("%d elements in %d tensors from %d bytes", elems, len(ts), len(data))
		}
	})
}

// fuzzSeedFiles are small fixtures, good and bad, for the .pt targets.
var fuzzSeedFiles = []string{"views.pt", "tiny_bare.pt", "bad_offset.pt", "bad_view_size.pt", "bad_missing_record.pt",
	"evil_stack_global.pt", "evil_eval_args.pt", "bad_negative_stride.pt", "bad_no_tensors.pt"}

func FuzzTorchZip(f *testing.F) {
	for _, name := range fuzzSeedFiles {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c *Checkpoint
		var err error
		within(t, data, func() { c, err = loadTorch("fuzz.pt", bytes.NewReader(data), int64(len(data)), Options{}) })
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.pt: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(c.Names) != len(c.Tensors) || len(c.Tensors) == 0 {
			t.Fatalf("%d names for %d tensors", len(c.Names), len(c.Tensors))
		}
	})
}

// pickleArchive wraps a pickle in an in-memory torch archive with storages
// "0" (6 float32), "1" (4 float16) and "2" (2 float64).
func pickleArchive(pkl []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, r := range []struct {
		name string
		size int
	}{{"archive/data.pkl", -1}, {"archive/data/0", 24}, {"archive/data/1", 8}, {"archive/data/2", 16}} {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: r.name, Method: zip.Store})
		if r.size < 0 {
			w.Write(pkl)
		} else {
			w.Write(bytes.Repeat([]byte{0x3c}, r.size))
		}
	}
	zw.Close()
	return buf.Bytes()
}

func FuzzPickle(f *testing.F) {
	for _, name := range fuzzSeedFiles {
		zr, err := zip.OpenReader(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, zf := range zr.File {
			if strings.HasSuffix(zf.Name, "/data.pkl") {
				rc, _ := zf.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				f.Add(b)
			}
		}
		zr.Close()
	}
	for _, s := range []string{"\x80\x02(K\x01d.", "\x80\x04(C\x01x\x91.", "\x80\x02ccollections\nOrderedDict\n)RC\x01xK\x01s.",
		"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}K\x01Ns.", "(dp0\nS'a'\np1\nI1\ns."} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		data := pickleArchive(pkl)
		var err error
		within(t, pkl, func() { _, err = loadTorch("fuzz.pt", bytes.NewReader(data), int64(len(data)), Options{}) })
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.pt: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// within runs fn and fails if it takes longer than a generous bound: the
// readers are linear in their input, so a slow input is a hang bug.
func within(t *testing.T, input []byte, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("input of %d bytes took over 20 s: %q", len(input), input)
	}
}
