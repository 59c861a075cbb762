package ckpt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"

	"gorgonia.org/tensor"

	"geca/internal/membudget"
	"geca/internal/npy"
	"geca/internal/safefile"
)

// The safetensors layout (huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON, then the raw tensor bytes. The JSON maps
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} with
// offsets relative to the first byte after the header; the optional
// "__metadata__" entry maps strings to strings.

// maxHeaderLen bounds the JSON header we agree to read (the reference
// implementation uses the same 100 MB limit).
const maxHeaderLen = 100 << 20

// maxSTTensors bounds the tensors of one file (a full Stable Diffusion
// checkpoint has about 1100).
const maxSTTensors = 1 << 16

// Metadata keys of geca's own safetensors files.
const (
	// MetaConfig keeps the engine.Config as JSON.
	MetaConfig = "geca.config"
	// MetaWeights says which weights a file holds: "ema" for a model file,
	// TrainingState for a trainer's state file.
	MetaWeights = "geca.weights"
	// TrainingState is MetaWeights of a trainer's state file (weights, EMA,
	// Adam moments, step), which only geca train --resume reads.
	TrainingState = "training-state"
)

// stEntry is one tensor of a safetensors header, checked.
type stEntry struct {
	name       string
	dtype      string
	shape      []int
	begin, end int64 // byte offsets relative to the data section
}

type stRawEntry struct {
	Dtype       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// dtypeSize returns the byte size of a safetensors dtype we can read.
func dtypeSize(dt string) (int64, bool) {
	switch dt {
	case "F32":
		return 4, true
	case "F16", "BF16":
		return 2, true
	}
	return 0, false
}

// LoadSafetensors reads every tensor of a safetensors file as float32 (F32,
// F16 and BF16 are accepted). names lists the tensors in file order (by data
// offset). Header length, JSON header, dtypes, shapes and offsets are checked
// against the file size before any tensor memory is allocated.
func LoadSafetensors(path string) (tensors map[string]*tensor.Dense, names []string, meta map[string]string, err error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	tensors, names, meta, err = decodeSafetensors(f, size)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return tensors, names, meta, nil
}

// decodeSafetensors reads a whole safetensors file of the given size from r.
func decodeSafetensors(r io.ReaderAt, size int64) (map[string]*tensor.Dense, []string, map[string]string, error) {
	entries, meta, dataStart, err := readSafetensorsHeader(r, size)
	if err != nil {
		return nil, nil, nil, err
	}
	// Half-precision tensors double in memory.
	var total int64
	for _, e := range entries {
		isz, _ := dtypeSize(e.dtype)
		total = membudget.Sum(total, membudget.Bytes(int((e.end-e.begin)/isz), 4))
	}
	if err := membudget.Check(fmt.Sprintf("%d tensors as float32", len(entries)), total); err != nil {
		return nil, nil, nil, err
	}
	tensors := make(map[string]*tensor.Dense, len(entries))
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		t, err := readSTTensor(r, dataStart, e)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("tensor %q: %w", e.name, err)
		}
		tensors[e.name] = t
		names = append(names, e.name)
	}
	return tensors, names, meta, nil
}

// openRegular opens path for reading and returns its size; folders, named
// pipes, devices and empty files are refused with an error naming the path,
// without waiting on a pipe (safefile.OpenRegular).
func openRegular(path string) (*os.File, int64, error) {
	f, st, err := safefile.OpenRegular(path)
	if err != nil {
		return nil, 0, err
	}
	if st.Size() == 0 {
		f.Close()
		return nil, 0, fmt.Errorf("%s: empty file", path)
	}
	return f, st.Size(), nil
}

// readSafetensorsHeader parses and checks the header of a safetensors file of
// the given size. Entries come back in data-offset order.
func readSafetensorsHeader(r io.ReaderAt, size int64) ([]stEntry, map[string]string, int64, error) {
	if size < 8 {
		return nil, nil, 0, fmt.Errorf("safetensors: file is %d bytes, shorter than the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, nil, 0, fmt.Errorf("safetensors: reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > uint64(size-8) {
		return nil, nil, 0, fmt.Errorf("safetensors: header length %d exceeds the %d bytes left in the file", n, size-8)
	}
	if n > maxHeaderLen {
		return nil, nil, 0, fmt.Errorf("safetensors: header length %d exceeds the %d-byte limit", n, maxHeaderLen)
	}
	if n < 2 {
		return nil, nil, 0, fmt.Errorf("safetensors: header length %d is too short for a JSON object", n)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, nil, 0, fmt.Errorf("safetensors: reading %d-byte header: %w", n, err)
	}
	dataStart := 8 + int64(n)
	entries, meta, err := parseSafetensorsHeader(hdr, size-dataStart)
	if err != nil {
		return nil, nil, 0, err
	}
	return entries, meta, dataStart, nil
}

// parseSafetensorsHeader checks the JSON header against dataLen, the number
// of bytes after it.
func parseSafetensorsHeader(hdr []byte, dataLen int64) ([]stEntry, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: header is not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("safetensors: header is not a JSON object")
	}
	var entries []stEntry
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("safetensors: header JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: header JSON: key expected")
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("safetensors: header names %q twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		if len(entries) == maxSTTensors {
			return nil, nil, fmt.Errorf("safetensors: more than %d tensors", maxSTTensors)
		}
		var raw stRawEntry
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("safetensors: entry %q: %w", name, err)
		}
		e, err := checkSTEntry(name, raw, dataLen)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, nil, fmt.Errorf("safetensors: header JSON: %w", err)
	}
	// Anything after the object must be the space padding writers add.
	if len(bytes.TrimRight(hdr[dec.InputOffset():], " \t\r\n\x00")) != 0 {
		return nil, nil, fmt.Errorf("safetensors: trailing bytes after the header JSON")
	}
	// Tensors must tile the data section exactly, in offset order, with no
	// gaps or overlaps (the reference implementation's rule).
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].begin != entries[j].begin {
			return entries[i].begin < entries[j].begin
		}
		return entries[i].end < entries[j].end
	})
	var pos int64
	for _, e := range entries {
		if e.begin != pos {
			if e.begin < pos {
				return nil, nil, fmt.Errorf("safetensors: tensor %q [%d, %d) overlaps the previous tensor (ends at %d)", e.name, e.begin, e.end, pos)
			}
			return nil, nil, fmt.Errorf("safetensors: gap in the data section before tensor %q (bytes %d to %d unused)", e.name, pos, e.begin)
		}
		pos = e.end
	}
	if pos != dataLen {
		return nil, nil, fmt.Errorf("safetensors: tensors cover %d bytes but the data section holds %d", pos, dataLen)
	}
	return entries, meta, nil
}

func checkSTEntry(name string, raw stRawEntry, dataLen int64) (stEntry, error) {
	e := stEntry{name: name, dtype: raw.Dtype}
	isz, ok := dtypeSize(raw.Dtype)
	if !ok {
		return e, fmt.Errorf("safetensors: tensor %q has dtype %q (supported: F32, F16, BF16)", name, raw.Dtype)
	}
	if len(raw.DataOffsets) != 2 {
		return e, fmt.Errorf("safetensors: tensor %q: data_offsets must hold 2 numbers, has %d", name, len(raw.DataOffsets))
	}
	e.begin, e.end = raw.DataOffsets[0], raw.DataOffsets[1]
	if e.begin < 0 || e.end < e.begin || e.end > dataLen {
		return e, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] outside the %d-byte data section", name, e.begin, e.end, dataLen)
	}
	n, err := shapeElems(raw.Shape, dataLen/isz)
	if err != nil {
		return e, fmt.Errorf("safetensors: tensor %q: %w", name, err)
	}
	if n*isz != e.end-e.begin {
		return e, fmt.Errorf("safetensors: tensor %q: shape %v of %s needs %d bytes, data_offsets span %d", name, raw.Shape, raw.Dtype, n*isz, e.end-e.begin)
	}
	e.shape = make([]int, len(raw.Shape))
	for i, d := range raw.Shape {
		e.shape[i] = int(d)
	}
	return e, nil
}

// maxDims bounds tensor rank.
const maxDims = 16

// shapeElems returns the element count of shape, refusing negative sizes,
// zero-size tensors, absurd ranks and products above limit (checked without
// overflow).
func shapeElems(shape []int64, limit int64) (int64, error) {
	if len(shape) > maxDims {
		return 0, fmt.Errorf("shape has %d dimensions (at most %d)", len(shape), maxDims)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative size", shape)
		}
		if d == 0 {
			return 0, fmt.Errorf("shape %v holds no elements (zero-size tensors are not supported)", shape)
		}
		if n > limit/d {
			return 0, fmt.Errorf("shape %v holds more elements than the file could (at most %d)", shape, limit)
		}
		n *= d
	}
	return n, nil
}

// readSTTensor reads one checked entry and converts it to float32.
func readSTTensor(r io.ReaderAt, dataStart int64, e stEntry) (*tensor.Dense, error) {
	isz, _ := dtypeSize(e.dtype)
	n := (e.end - e.begin) / isz
	out := make([]float32, n)
	off := dataStart + e.begin
	var err error
	switch e.dtype {
	case "F32":
		err = readF32(r, off, out)
	case "F16":
		err = readHalf(r, off, out, npy.Float16ToFloat32)
	case "BF16":
		err = readHalf(r, off, out, bf16ToF32)
	}
	if err != nil {
		return nil, err
	}
	return newDense(e.shape, out), nil
}

// newDense wraps data (of exactly the shape's size) in a tensor.
func newDense(shape []int, data []float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(slices.Clone(shape)...), tensor.WithBacking(data))
}

// SaveSafetensors writes tensors as F32 in the order given by names (which
// must name every tensor exactly once; nil means sorted by name), with meta
// as "__metadata__" (keys sorted). The output is byte-for-byte deterministic.
// The file is written to a temporary name and renamed into place.
func SaveSafetensors(path string, tensors map[string]*tensor.Dense, names []string, meta map[string]string) error {
	if names == nil {
		for k := range tensors {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	if len(names) != len(tensors) {
		return fmt.Errorf("%s: %d names given for %d tensors", path, len(names), len(tensors))
	}
	datas := make([][]float32, len(names))
	shapes := make([][]int, len(names))
	seen := make(map[string]bool, len(names))
	for i, name := range names {
		if name == "__metadata__" {
			return fmt.Errorf("%s: a tensor may not be called __metadata__", path)
		}
		if seen[name] {
			return fmt.Errorf("%s: tensor %q named twice", path, name)
		}
		seen[name] = true
		t, ok := tensors[name]
		if !ok || t == nil {
			return fmt.Errorf("%s: tensor %q listed in names but missing", path, name)
		}
		d, err := denseFloat32(t)
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %w", path, name, err)
		}
		datas[i], shapes[i] = d, []int(t.Shape())
	}

	// The header: metadata first, then the tensors in the given order.
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	if len(meta) > 0 {
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		hdr.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				hdr.WriteByte(',')
			}
			writeJSONString(&hdr, k)
			hdr.WriteByte(':')
			writeJSONString(&hdr, meta[k])
		}
		hdr.WriteByte('}')
		first = false
	}
	var off int64
	for i, name := range names {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		writeJSONString(&hdr, name)
		hdr.WriteString(`:{"dtype":"F32","shape":[`)
		for j, d := range shapes[i] {
			if j > 0 {
				hdr.WriteByte(',')
			}
			hdr.WriteString(strconv.Itoa(d))
		}
		end := off + 4*int64(len(datas[i]))
		fmt.Fprintf(&hdr, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 { // align the data section, as the reference writer does
		hdr.WriteByte(' ')
	}

	// Whole or not at all: a temporary file renamed into place once
	// complete (safefile.Write).
	return safefile.Write(path, func(w io.Writer) error {
		var lenBuf [8]byte
		binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
		if _, err := w.Write(lenBuf[:]); err != nil {
			return err
		}
		if _, err := w.Write(hdr.Bytes()); err != nil {
			return err
		}
		for _, d := range datas {
			if err := writeF32(w, d); err != nil {
				return err
			}
		}
		return nil
	})
}

// denseFloat32 returns the values of t in row-major order.
func denseFloat32(t *tensor.Dense) ([]float32, error) {
	if t.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("dtype %v, only float32 can be written", t.Dtype())
	}
	if t.IsMaterializable() || t.RequiresIterator() {
		m, ok := t.Materialize().(*tensor.Dense)
		if !ok {
			return nil, errors.New("cannot materialize view")
		}
		t = m
	}
	switch d := t.Data().(type) {
	case []float32:
		if len(d) != t.Shape().TotalSize() && !(t.Shape().IsScalar() && len(d) == 1) {
			return nil, fmt.Errorf("holds %d values for shape %v", len(d), t.Shape())
		}
		return d, nil
	case float32:
		return []float32{d}, nil
	}
	return nil, fmt.Errorf("unexpected backing %T", t.Data())
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// bf16ToF32 converts a bfloat16 value (the top half of a float32).
func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
