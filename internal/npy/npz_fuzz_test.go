package npy

import (
	"os"
	"path/filepath"
	"testing"
)

// ReadNPZ never panics on an archive, whatever its entries declare.
//
//	go test ./internal/npy -run '^$' -fuzz FuzzReadNPZ -fuzztime 30s
func FuzzReadNPZ(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "pair.npz")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "x.npz")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		arrays, err := ReadNPZ(p)
		if err != nil {
			return
		}
		for name, a := range arrays {
			if a.Size() != len(a.Data) {
				t.Fatalf("%s: shape %v for %d values", name, a.Shape, len(a.Data))
			}
		}
	})
}
