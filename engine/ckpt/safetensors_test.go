package ckpt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"geca/internal/npy"

	"gorgonia.org/tensor"
)

func loadExpected(t testing.TB) map[string]*npy.Array {
	t.Helper()
	exp, err := npy.ReadNPZ("testdata/expected.npz")
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// sameBits compares float32 values bit for bit (NaN included).
func sameBits(t testing.TB, what string, got []float32, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v (%08x), want %v (%08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

func TestLoadSafetensorsMixedDtypes(t *testing.T) {
	exp := loadExpected(t)
	ts, names, meta, err := LoadSafetensors("testdata/mixed.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"a.f32", "b.f16", "c.bf16", "d.f16special"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("names %v, want %v", names, wantNames)
	}
	if meta["format"] != "pt" || meta["note"] != "fixture" || len(meta) != 2 {
		t.Fatalf("metadata %v", meta)
	}
	for _, n := range names {
		want := exp["st/"+n]
		got := ts[n]
		if !slices.Equal([]int(got.Shape()), want.Shape) {
			t.Fatalf("%s: shape %v, want %v", n, got.Shape(), want.Shape)
		}
		sameBits(t, n, got.Data().([]float32), want.Data)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ts := map[string]*tensor.Dense{
		"w":      tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, -2, 3.5, float32(math.Inf(1)), 0, 1e-30})),
		"b":      tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{7, 8, 9})),
		"a.long": tensor.New(tensor.WithShape(1, 1, 2), tensor.WithBacking([]float32{-0.5, 0.25})),
	}
	names := []string{"w", "b", "a.long"}
	meta := map[string]string{MetaConfig: `{"name":"x"}`, "z": "quote \" and \\ and \n"}
	p1 := filepath.Join(dir, "a.safetensors")
	if err := SaveSafetensors(p1, ts, names, meta); err != nil {
		t.Fatal(err)
	}
	got, gotNames, gotMeta, err := LoadSafetensors(p1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotNames, names) {
		t.Fatalf("names %v, want %v", gotNames, names)
	}
	for k, v := range meta {
		if gotMeta[k] != v {
			t.Fatalf("meta[%q] = %q, want %q", k, gotMeta[k], v)
		}
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			if !slices.Equal([]int(got[n].Shape()), []int(ts[n].Shape())) {
				t.Fatalf("%s shape %v", n, got[n].Shape())
			}
			sameBits(t, n, got[n].Data().([]float32), ts[n].Data().([]float32))
		})
	}
	// Deterministic: writing again gives the same bytes; the data section is
	// 8-byte aligned.
	p2 := filepath.Join(dir, "b.safetensors")
	if err := SaveSafetensors(p2, got, gotNames, gotMeta); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Fatal("re-saving a loaded file changed its bytes")
	}
	if n := binary.LittleEndian.Uint64(b1); n%8 != 0 {
		t.Fatalf("header length %d is not a multiple of 8", n)
	}
	// nil names: sorted order.
	p3 := filepath.Join(dir, "c.safetensors")
	if err := SaveSafetensors(p3, ts, nil, nil); err != nil {
		t.Fatal(err)
	}
	_, n3, m3, err := LoadSafetensors(p3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n3, []string{"a.long", "b", "w"}) || len(m3) != 0 {
		t.Fatalf("names %v meta %v", n3, m3)
	}
}

func TestSaveSafetensorsRefuses(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.safetensors")
	w := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))
	i64 := tensor.New(tensor.WithShape(2), tensor.WithBacking([]int64{1, 2}))
	for ci, c := range []struct {
		ts    map[string]*tensor.Dense
		names []string
		want  string
	}{
		{map[string]*tensor.Dense{"w": w}, []string{"v"}, `"v" listed in names but missing`},
		{map[string]*tensor.Dense{"w": w}, []string{"w", "w"}, "2 names given for 1 tensors"},
		{map[string]*tensor.Dense{"w": w, "v": w}, []string{"w", "w"}, "named twice"},
		{map[string]*tensor.Dense{"__metadata__": w}, nil, "__metadata__"},
		{map[string]*tensor.Dense{"i": i64}, nil, "only float32"},
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			err := SaveSafetensors(p, c.ts, c.names, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("names %v: error %v, want one naming %s and containing %q", c.names, err, p, c.want)
			}
		})
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("a refused save left a file behind")
	}
}

// stFile builds a safetensors file from a raw header and data section.
func stFile(t *testing.T, hdr string, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(hdr)))
	b.WriteString(hdr)
	b.Write(data)
	p := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSafetensorsHostile(t *testing.T) {
	eight := make([]byte, 8)
	cases := []struct {
		name, hdr string
		data      []byte
		want      string
	}{
		{"not json", `nope`, nil, "not JSON"},
		{"array", `[1,2]`, nil, "not a JSON object"},
		{"bad dtype", `{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, eight, `dtype "F64"`},
		{"offsets past end", `{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, eight, "outside the 8-byte data section"},
		{"offsets reversed", `{"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, eight, "outside"},
		{"negative offset", `{"x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, eight, "outside"},
		{"shape mismatch", `{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 16), "needs 12 bytes"},
		{"negative dim", `{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, eight, "negative size"},
		{"zero size", `{"x":{"dtype":"F32","shape":[0,2],"data_offsets":[0,0]}}`, nil, "no elements"},
		{"overflow shape", `{"x":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}`, eight, "more elements than the file"},
		{"huge dim", `{"x":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}}`, eight, "x"},
		{"too many dims", `{"x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}}`, eight, "dimensions"},
		{"overlap", `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight, "overlaps"},
		{"gap", `{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight, "gap"},
		{"uncovered tail", `{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight, "cover 4 bytes but the data section holds 8"},
		{"duplicate", `{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight, "twice"},
		{"bad metadata", `{"__metadata__":{"a":1}}`, nil, "__metadata__"},
		{"one offset", `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, eight, "2 numbers"},
		{"trailing", `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} {}`, eight, "trailing"},
		{"truncated json", `{"x":{"dtype":"F32",`, nil, "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := stFile(t, c.hdr, c.data)
			_, _, _, err := LoadSafetensors(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %v, want one naming the file and containing %q", c.name, err, c.want)
			}
		})
	}
}

func TestLoadSafetensorsBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<62)
	limit := make([]byte, 16+maxHeaderLen+1)
	binary.LittleEndian.PutUint64(limit, maxHeaderLen+1)
	good, _ := os.ReadFile("testdata/mixed.safetensors")
	cases := []struct {
		path, want string
	}{
		{write("empty.safetensors", nil), "empty file"},
		{write("short.safetensors", []byte{1, 2, 3}), "shorter than the 8-byte header length"},
		{write("huge.safetensors", huge), "exceeds the 8 bytes left"},
		{write("limit.safetensors", limit), "exceeds the 104857600-byte limit"},
		{write("trunc.safetensors", good[:len(good)-3]), "data_offsets [44, 60] outside the 57-byte data section"},
		{write("trunchdr.safetensors", good[:40]), "exceeds the 32 bytes left"},
		{dir, "is a folder"},
		{filepath.Join(dir, "missing.safetensors"), "no such file"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			_, _, _, err := LoadSafetensors(c.path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("%s: error %v, want one naming the file and containing %q", filepath.Base(c.path), err, c.want)
			}
		})
	}
}

func TestHalfConversions(t *testing.T) {
	for ci, c := range []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.9604645e-08}, {0x03ff, 6.097555e-05},
		{0x0400, 6.1035156e-05}, {0x8000, float32(math.Copysign(0, -1))}, {0x7c00, float32(math.Inf(1))},
		{0x3555, 0.33325195},
	} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			if got := npy.Float16ToFloat32(c.h); math.Float32bits(got) != math.Float32bits(c.want) {
				t.Errorf("Float16ToFloat32(%04x) = %v, want %v", c.h, got, c.want)
			}
		})
	}
	if v := npy.Float16ToFloat32(0x7e00); !math.IsNaN(float64(v)) {
		t.Errorf("f16 NaN gave %v", v)
	}
	if got := bf16ToF32(0x3f80); got != 1 {
		t.Errorf("bf16 1.0 gave %v", got)
	}
	if got := bf16ToF32(0xc049); got != -3.140625 {
		t.Errorf("bf16 gave %v", got)
	}
}
