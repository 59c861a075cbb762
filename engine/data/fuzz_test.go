package data

import (
	"bytes"
	"testing"
)

// ReadIDX never panics and never allocates more than its input announces
// and holds.
//
//	go test ./engine/data -run '^$' -fuzz FuzzReadIDX -fuzztime 30s
func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]int{2, 3}, []byte{1, 2, 3, 4, 5, 6}))
	f.Add(idxBytes([]int{1 << 20, 1 << 20}, nil))
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 2, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ReadIDX(bytes.NewReader(b))
		if err != nil {
			return
		}
		n := 1
		for _, d := range x.Dims {
			n *= d
		}
		if n != len(x.Data) || len(x.Data) > len(b) {
			t.Fatalf("dims %v, %d bytes from %d", x.Dims, len(x.Data), len(b))
		}
	})
}
