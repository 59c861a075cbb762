// Package npy reads and writes NumPy .npy arrays and .npz archives.
//
// Only what the project exchanges with PyTorch/NumPy is supported: little-endian
// float32, float64, float16, int64, int32, uint8 and bool arrays in C order. Every
// read value is converted to float32. Headers are checked against the data size
// before anything is allocated, so a hostile file cannot make us allocate more
// than it holds.
package npy

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"geca/internal/membudget"
	"geca/internal/safefile"
)

// Array is a dense float32 array in C (row-major) order.
type Array struct {
	Shape []int
	Data  []float32
}

// Size returns the number of elements the shape describes.
func (a *Array) Size() int { return shapeSize(a.Shape) }

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

var magic = []byte("\x93NUMPY")

// maxElems bounds the element count of any array we agree to read (16 Gi elements).
const maxElems = 1 << 34

var (
	reDescr   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	reFortran = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	reShape   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// Read parses one .npy array from r. size is the number of bytes available in
// r (or -1 if unknown); when known it is checked against the header before
// allocating.
func Read(r io.Reader, size int64) (*Array, error) { return read(r, size, 0) }

// read is Read for a caller that already holds held bytes of arrays: the
// memory limit applies to the total.
func read(r io.Reader, size, held int64) (*Array, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("npy: short header: %w", err)
	}
	if !bytes.Equal(pre[:6], magic) {
		return nil, errors.New("npy: not a .npy file (bad magic)")
	}
	major := pre[6]
	var hlen int
	consumed := int64(10)
	switch major {
	case 1:
		hlen = int(binary.LittleEndian.Uint16(pre[8:10]))
	case 2, 3:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return nil, fmt.Errorf("npy: short header: %w", err)
		}
		hlen = int(binary.LittleEndian.Uint32(append(pre[8:10:10], ext[:]...)))
		consumed += 2
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d", major)
	}
	if hlen > 1<<20 || (size >= 0 && int64(hlen)+consumed > size) {
		return nil, fmt.Errorf("npy: header length %d is larger than the file", hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("npy: short header: %w", err)
	}
	consumed += int64(hlen)
	h := string(hdr)
	m := reDescr.FindStringSubmatch(h)
	if m == nil {
		return nil, errors.New("npy: header has no descr")
	}
	descr := m[1]
	if f := reFortran.FindStringSubmatch(h); f == nil || f[1] != "False" {
		return nil, errors.New("npy: only C-order arrays are supported (fortran_order must be False)")
	}
	s := reShape.FindStringSubmatch(h)
	if s == nil {
		return nil, errors.New("npy: header has no shape")
	}
	shape, n, err := parseShape(s[1])
	if err != nil {
		return nil, err
	}
	var width int
	switch descr {
	case "<f4", "<i4":
		width = 4
	case "<f8", "<i8":
		width = 8
	case "<f2":
		width = 2
	case "|u1", "|b1", "|i1":
		width = 1
	default:
		return nil, fmt.Errorf("npy: unsupported dtype %q (want little-endian float/int/uint8/bool)", descr)
	}
	if size >= 0 && n*int64(width) > size-consumed {
		return nil, fmt.Errorf("npy: shape %v needs %d bytes but the file holds %d", shape, n*int64(width), size-consumed)
	}
	if err := membudget.Check(fmt.Sprintf("npy array of shape %v", shape), membudget.Sum(held, membudget.Bytes(int(n), 4))); err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	// The bytes are read and converted a chunk at a time, so memory holds
	// the float32 result and one chunk, whatever the stored type. From a
	// stream of unknown size the result grows with what really arrives, so
	// a short stream cannot make it allocate what its header claims.
	var out []float32
	if size >= 0 {
		out = make([]float32, 0, n)
	}
	chunk := make([]byte, min(n*int64(width), readChunk))
	for i := int64(0); i < n; {
		k := min(n-i, int64(len(chunk)/width))
		raw := chunk[:k*int64(width)]
		if _, err := io.ReadFull(r, raw); err != nil {
			return nil, fmt.Errorf("npy: data truncated: shape %v needs %d bytes: %w", shape, n*int64(width), err)
		}
		out = slices.Grow(out, int(k))
		out = out[:i+k]
		convert(out[i:i+k], raw, descr)
		i += k
	}
	if out == nil {
		out = []float32{}
	}
	return &Array{Shape: shape, Data: out}, nil
}

// readChunk is the size of the buffer Read converts through.
const readChunk = 1 << 20

// convert decodes len(dst) values of type descr from raw.
func convert(dst []float32, raw []byte, descr string) {
	for i := range dst {
		switch descr {
		case "<f4":
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		case "<i4":
			dst[i] = float32(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		case "<f8":
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		case "<i8":
			dst[i] = float32(int64(binary.LittleEndian.Uint64(raw[8*i:])))
		case "<f2":
			dst[i] = Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		case "|u1", "|b1":
			dst[i] = float32(raw[i])
		case "|i1":
			dst[i] = float32(int8(raw[i]))
		}
	}
}

// maxDims bounds the number of dimensions of an array.
const maxDims = 32

// parseShape reads the inside of a shape tuple, "2, 3" or "4," or "", and
// returns the dimensions and their product. Every dimension, and the
// product, must be at most maxElems: the product is checked before each
// multiplication, so no shape can overflow into a small count, and every
// dimension stays small enough for callers to multiply a few of them.
func parseShape(s string) ([]int, int64, error) {
	shape := []int{}
	n := int64(1)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := strconv.ParseInt(part, 10, 64)
		if err != nil || d < 0 {
			return nil, 0, fmt.Errorf("npy: bad shape entry %q", part)
		}
		if d > maxElems || (d > 0 && n > maxElems/d) {
			return nil, 0, fmt.Errorf("npy: shape (%s) is too large (more than %d elements)", s, int64(maxElems))
		}
		if len(shape) == maxDims {
			return nil, 0, fmt.Errorf("npy: shape (%s) has more than %d dimensions", s, maxDims)
		}
		n *= d
		shape = append(shape, int(d))
	}
	if len(shape) == 0 {
		shape = nil
	}
	return shape, n, nil
}

// Float16ToFloat32 converts an IEEE 754 half-precision value.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// ReadFile reads a .npy file (a regular file only: a named pipe or device
// is refused rather than waited on).
func ReadFile(path string) (*Array, error) {
	f, st, err := safefile.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := Read(bufio.NewReaderSize(f, 1<<16), st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// Write writes a float32 array as a version-1 .npy.
func Write(w io.Writer, shape []int, data []float32) error {
	if err := writeHeader(w, "<f4", shape, len(data)); err != nil {
		return err
	}
	buf := make([]byte, 4*min(len(data), readChunk/4))
	for i := 0; i < len(data); {
		k := min(len(data)-i, len(buf)/4)
		for j, v := range data[i : i+k] {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*k]); err != nil {
			return err
		}
		i += k
	}
	return nil
}

// writeHeader writes the magic, version and header dict of a version-1
// .npy holding n values of type descr (numpy's dtype string) in shape.
func writeHeader(w io.Writer, descr string, shape []int, n int) error {
	if len(shape) > maxDims {
		return fmt.Errorf("npy: shape %v has more than %d dimensions", shape, maxDims)
	}
	if membudget.Bytes(shape...) != int64(n) {
		return fmt.Errorf("npy: shape %v does not match %d values", shape, n)
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	st := strings.Join(dims, ", ")
	if len(shape) == 1 {
		st += ","
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, st)
	// Pad so that the data starts on a 64-byte boundary, newline-terminated.
	total := 10 + len(h) + 1
	pad := (64 - total%64) % 64
	h += strings.Repeat(" ", pad) + "\n"
	var pre [10]byte
	copy(pre[:], magic)
	pre[6], pre[7] = 1, 0
	binary.LittleEndian.PutUint16(pre[8:], uint16(len(h)))
	if _, err := w.Write(pre[:]); err != nil {
		return err
	}
	_, err := io.WriteString(w, h)
	return err
}

// WriteFile writes a float32 array to path, whole or not at all: an
// interrupted or failed write leaves whatever path held before
// (safefile.Write).
func WriteFile(path string, shape []int, data []float32) error {
	return safefile.Write(path, func(w io.Writer) error { return Write(w, shape, data) })
}

// maxDeflateRatio bounds what deflate inflates one byte to (about 1032).
const maxDeflateRatio = 1100

// maxNPZEntries bounds the arrays of one .npz archive.
const maxNPZEntries = 1 << 16

// ReadNPZ reads every array of an .npz archive (as written by numpy.savez), keyed
// by name without the .npy suffix. The memory of all arrays together is
// checked against the limit (membudget) before each is allocated.
func ReadNPZ(path string) (map[string]*Array, error) {
	f, st, err := safefile.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: not an .npz archive: %w", path, err)
	}
	if len(zr.File) > maxNPZEntries {
		return nil, fmt.Errorf("%s: %d entries, more than the %d an .npz may hold here", path, len(zr.File), maxNPZEntries)
	}
	out := make(map[string]*Array, len(zr.File))
	var total int64
	for _, zf := range zr.File {
		name := strings.TrimSuffix(zf.Name, ".npy")
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s: holds %s twice", path, zf.Name)
		}
		size := int64(zf.UncompressedSize64)
		if zf.UncompressedSize64 > math.MaxInt64/2 || zf.CompressedSize64 > uint64(st.Size()) {
			return nil, fmt.Errorf("%s: %s declares an impossible size", path, zf.Name)
		}
		// What the entry can really hold: its stored bytes, or what deflate
		// inflates them to at most.
		if zf.Method == zip.Store {
			size = min(size, int64(zf.CompressedSize64))
		} else {
			size = min(size, int64(zf.CompressedSize64)*maxDeflateRatio)
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, zf.Name, err)
		}
		a, err := read(bufio.NewReaderSize(rc, 1<<16), size, total)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, zf.Name, err)
		}
		total = membudget.Sum(total, membudget.Bytes(len(a.Data), 4))
		out[name] = a
	}
	return out, nil
}
