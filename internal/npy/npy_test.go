package npy

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"geca/internal/membudget"
)

func TestReadNumPyFiles(t *testing.T) {
	cases := []struct {
		file  string
		shape []int
		data  []float32
	}{
		{"f32.npy", []int{2, 3}, []float32{0, 0.25, 0.5, 0.75, 1, 1.25}},
		{"f64.npy", []int{3}, []float32{1.5, -2.25, 1e-3}},
		{"f16.npy", []int{4}, []float32{1, -0.5, 65504, Float16ToFloat32(1)}}, // 6e-8 rounds to the smallest subnormal
		{"i64.npy", []int{2, 2}, []float32{1, -2, 3, 40000000}},
		{"u8.npy", []int{3}, []float32{0, 7, 255}},
		{"bool.npy", []int{3}, []float32{1, 0, 1}},
		{"scalar.npy", nil, []float32{3.5}},
	}
	for _, c := range cases {
		a, err := ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if !reflect.DeepEqual(a.Shape, c.shape) {
			t.Errorf("%s: shape %v, want %v", c.file, a.Shape, c.shape)
		}
		if !reflect.DeepEqual(a.Data, c.data) {
			t.Errorf("%s: data %v, want %v", c.file, a.Data, c.data)
		}
	}
}

func TestFloat16(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, float32(math.Ldexp(1, -24))},
		{0x0400, float32(math.Ldexp(1, -14))}, {0x8000, float32(math.Copysign(0, -1))},
		{0x7c00, float32(math.Inf(1))},
	} {
		if got := Float16ToFloat32(c.h); got != c.want || math.Signbit(float64(got)) != math.Signbit(float64(c.want)) {
			t.Errorf("Float16ToFloat32(%#04x) = %v, want %v", c.h, got, c.want)
		}
	}
	if v := Float16ToFloat32(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("NaN half decoded as %v", v)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.npy")
	data := []float32{1, -2, float32(math.Pi), 0, 5, 6}
	if err := WriteFile(path, []int{1, 2, 3}, data); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if (len(raw)-len(data)*4)%64 != 0 {
		t.Errorf("header is %d bytes, want data aligned at 64", len(raw)-len(data)*4)
	}
	a, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Shape, []int{1, 2, 3}) || !reflect.DeepEqual(a.Data, data) {
		t.Fatalf("round trip gave %v %v", a.Shape, a.Data)
	}
	if err := Write(&bytes.Buffer{}, []int{4}, data); err == nil {
		t.Error("shape/data mismatch accepted")
	}
}

func TestReadNPZ(t *testing.T) {
	m, err := ReadNPZ(filepath.Join("testdata", "pair.npz"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m["a"].Data, []float32{1, 1, 1}) || !reflect.DeepEqual(m["b"].Shape, []int{1, 2}) {
		t.Fatalf("npz arrays: a=%v b=%v", m["a"], m["b"])
	}
	if _, err := ReadNPZ(filepath.Join("testdata", "f32.npy")); err == nil {
		t.Error("a .npy read as .npz")
	}
}

func TestBadInput(t *testing.T) {
	header := func(h string) []byte {
		b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
		return append(b, h...)
	}
	cases := map[string][]byte{
		"empty":        nil,
		"magic":        []byte("PK\x03\x04 not numpy at all"),
		"version":      []byte("\x93NUMPY\x09\x00\x00\x00"),
		"long header":  append([]byte("\x93NUMPY\x01\x00"), 0xff, 0xff),
		"dtype":        header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }"),
		"shape":        header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"),
		"huge shape":   header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 1000000), }"),
		"truncated":    header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }"),
		"no descr":     header("{'fortran_order': False, 'shape': (1,), }"),
		"fortran":      header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }"),
		"header short": []byte("\x93NUMPY\x01\x00\x40\x00{'descr'"),
	}
	for name, b := range cases {
		if _, err := Read(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Errorf("%s: accepted", name)
		}
		// Unknown size (a stream) must fail too, without allocating the claimed size.
		if _, err := Read(bytes.NewReader(b), -1); err == nil {
			t.Errorf("%s (stream): accepted", name)
		}
	}
	if _, err := ReadFile("testdata"); err == nil || !strings.Contains(err.Error(), "folder") {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadFile(filepath.Join("testdata", "fortran.npy")); err == nil || !strings.Contains(err.Error(), "fortran.npy") {
		t.Errorf("fortran-order file: %v", err)
	}
}

// Shapes whose product overflows, or whose dimensions are absurd, are refused
// from the header, cheaply, whatever the file holds: such a shape once made
// geca decode and geca train panic.
func TestHostileShapes(t *testing.T) {
	header := func(h string) []byte {
		b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
		return append(append(b, h...), make([]byte, 16)...)
	}
	for _, shape := range []string{
		"1, 4, 4611686018427387905, 1", // 16 × 2^62 wraps to 16
		"4294967296, 4294967296, 0",    // dimensions beyond the cap, even with a zero
		"0, 9223372036854775807",       // a zero does not excuse a huge dimension
		"99999999999999999999",         // not an int64
		"2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2", // 33 dimensions
	} {
		b := header("{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }")
		var err error
		alloc := allocated(func() {
			for _, size := range []int64{int64(len(b)), -1} {
				if _, err = Read(bytes.NewReader(b), size); err == nil {
					t.Errorf("shape (%s), size %d: accepted", shape, size)
				}
			}
		})
		if alloc > 1<<20 {
			t.Errorf("shape (%s): %d bytes allocated to refuse it", shape, alloc)
		}
	}
	// A stream (no size to check against) that declares more than the
	// memory limit is refused before it is allocated.
	defer membudget.Set(0)
	membudget.Set(64 << 20)
	b := header("{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824,), }")
	var err error
	alloc := allocated(func() { _, err = Read(bytes.NewReader(b), -1) })
	if err == nil || !strings.Contains(err.Error(), "memory limit") || alloc > 1<<20 {
		t.Errorf("1 Gi values from a stream: %v after %d bytes", err, alloc)
	}
}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// A shape that does not match the data, or overflows, is refused by Write.
func TestWriteChecksShape(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, []int{3, 0}, nil); err != nil {
		t.Errorf("a zero-size shape: %v", err)
	}
	if err := Write(&buf, []int{1 << 62, 1 << 62, 0}, nil); err == nil {
		t.Error("a shape the reader refuses was written")
	}
	if err := Write(&buf, []int{1 << 40, 1 << 40}, make([]float32, 4)); err == nil {
		t.Error("an overflowing shape was written")
	}
}

// Read never panics and never allocates more than the file could hold (or
// the memory limit, for a stream).
func FuzzRead(f *testing.F) {
	for _, name := range []string{"f32.npy", "f64.npy", "f16.npy", "i64.npy", "u8.npy", "bool.npy", "scalar.npy"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Read(bytes.NewReader(b), int64(len(b)))
		if err == nil && int64(len(a.Data))*1 > int64(len(b)) {
			t.Fatalf("%d values from %d bytes", len(a.Data), len(b))
		}
		if err == nil && membudget.Bytes(a.Shape...) != int64(len(a.Data)) {
			t.Fatalf("shape %v for %d values", a.Shape, len(a.Data))
		}
	})
}
