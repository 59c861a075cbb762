package ckpt

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"

	"geca/internal/membudget"
	"geca/internal/npy"
)

// A torch.save file (PyTorch >= 1.6) is a zip archive: PREFIX/data.pkl holds
// the pickled object, whose tensors refer by persistent id to storages kept
// as raw little-endian records PREFIX/data/KEY. torch writes every record
// uncompressed (stored), so a tensor is read straight from the file at its
// record's offset, and only the tensors that are actually needed are read.

// maxPickleLen bounds data.pkl (a GeCA checkpoint's is about 30 KB).
const maxPickleLen = 64 << 20

// maxZipEntries bounds the records of an archive (a checkpoint has one per
// storage, a few thousand at most).
const maxZipEntries = 1 << 18

// maxDeflateRatio bounds the size a compressed record may declare relative
// to its compressed size (deflate cannot exceed about 1032:1).
const maxDeflateRatio = 1100

// maxInflated bounds what one compressed record may inflate to, and
// maxInflatedTotal all of an archive's: torch.save stores its records
// uncompressed, so compression only comes from other tools, and a ratio
// alone would let 1 MB inflate to 1 GB (docs/safety.md).
const (
	maxInflated      = 256 << 20
	maxInflatedTotal = 1 << 30
)

// record is one zip entry whose size and position have been checked against
// the file.
type record struct {
	name   string
	zf     *zip.File
	file   io.ReaderAt
	size   int64 // uncompressed bytes
	off    int64 // data offset in the file (stored records)
	stored bool
	cache  []byte // inflated content of a compressed record, once read
	total  *int64 // bytes inflated so far in the whole archive
}

// readerAt returns a reader for the record's content and the offset of its
// first byte in that reader.
func (r *record) readerAt() (io.ReaderAt, int64, error) {
	if r.stored {
		return r.file, r.off, nil
	}
	if r.cache == nil {
		if *r.total+r.size > maxInflatedTotal {
			return nil, 0, fmt.Errorf("zip record %s: the archive's compressed records inflate to more than %d MB", r.name, maxInflatedTotal>>20)
		}
		if err := membudget.Check(fmt.Sprintf("zip record %s inflated", r.name), *r.total+r.size); err != nil {
			return nil, 0, err
		}
		*r.total += r.size
		rc, err := r.zf.Open()
		if err != nil {
			return nil, 0, fmt.Errorf("zip record %s: %w", r.name, err)
		}
		defer rc.Close()
		buf := make([]byte, r.size)
		if _, err := io.ReadFull(rc, buf); err != nil {
			return nil, 0, fmt.Errorf("zip record %s: %w", r.name, err)
		}
		r.cache = buf
	}
	return bytes.NewReader(r.cache), 0, nil
}

// torchArchive is an opened torch.save zip file.
type torchArchive struct {
	path     string
	zr       *zip.Reader
	file     io.ReaderAt
	fileSize int64
	prefix   string
	entries  map[string]*zip.File
	records  map[string]*record
	storages map[string]*storageRef
	inflated int64 // bytes of compressed records inflated so far
}

func openTorchZip(path string, f io.ReaderAt, size int64) (*torchArchive, error) {
	zr, err := zip.NewReader(f, size)
	if errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("zip archive holds an entry with an unsafe path")
	}
	if err != nil {
		return nil, fmt.Errorf("not a valid zip archive (truncated or corrupt?): %w", err)
	}
	if len(zr.File) > maxZipEntries {
		return nil, fmt.Errorf("zip archive holds %d records, more than the %d a checkpoint may", len(zr.File), maxZipEntries)
	}
	a := &torchArchive{path: path, zr: zr, file: f, fileSize: size,
		entries: map[string]*zip.File{}, records: map[string]*record{}, storages: map[string]*storageRef{}}
	var pkl []string
	for _, zf := range zr.File {
		if _, dup := a.entries[zf.Name]; dup {
			return nil, fmt.Errorf("zip archive names %q twice", zf.Name)
		}
		a.entries[zf.Name] = zf
		if dir, ok := strings.CutSuffix(zf.Name, "/data.pkl"); ok && dir != "" && !strings.Contains(dir, "/") {
			pkl = append(pkl, dir)
		}
	}
	switch len(pkl) {
	case 0:
		if _, ok := a.entries["data.pkl"]; ok {
			a.prefix = ""
			break
		}
		return nil, fmt.Errorf("zip archive has no data.pkl: not a PyTorch checkpoint")
	case 1:
		a.prefix = pkl[0] + "/"
	default:
		return nil, fmt.Errorf("zip archive holds %d data.pkl records (%s/, %s/, ...): not a single torch.save checkpoint", len(pkl), pkl[0], pkl[1])
	}
	if _, ok := a.entries[a.prefix+"constants.pkl"]; ok {
		return nil, fmt.Errorf("a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
	}
	if zf, ok := a.entries[a.prefix+"byteorder"]; ok {
		r, err := a.record(zf.Name)
		if err != nil {
			return nil, err
		}
		if r.size > 16 {
			return nil, fmt.Errorf("zip record %s is %d bytes", r.name, r.size)
		}
		b, err := a.readAll(r)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fmt.Errorf("storages are stored %q-endian; only little-endian checkpoints are supported", s)
		}
	}
	return a, nil
}

// record returns the checked record called name.
func (a *torchArchive) record(name string) (*record, error) {
	if r, ok := a.records[name]; ok {
		return r, nil
	}
	zf, ok := a.entries[name]
	if !ok {
		return nil, fmt.Errorf("zip archive has no record %s", name)
	}
	if zf.UncompressedSize64 > math.MaxInt64/2 || zf.CompressedSize64 > math.MaxInt64/2 {
		return nil, fmt.Errorf("zip record %s declares an impossible size", name)
	}
	r := &record{name: name, zf: zf, file: a.file, size: int64(zf.UncompressedSize64), total: &a.inflated}
	switch zf.Method {
	case zip.Store:
		off, err := zf.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("zip record %s: local header unreadable: %w", name, err)
		}
		if zf.CompressedSize64 != zf.UncompressedSize64 {
			return nil, fmt.Errorf("zip record %s is stored but declares %d bytes compressed, %d uncompressed", name, zf.CompressedSize64, zf.UncompressedSize64)
		}
		if off < 0 || off > a.fileSize || r.size > a.fileSize-off {
			return nil, fmt.Errorf("zip record %s (%d bytes at offset %d) runs past the end of the %d-byte file (truncated?)", name, r.size, off, a.fileSize)
		}
		r.off, r.stored = off, true
	case zip.Deflate:
		c := int64(zf.CompressedSize64)
		if c > a.fileSize {
			return nil, fmt.Errorf("zip record %s declares %d compressed bytes in a %d-byte file (truncated?)", name, c, a.fileSize)
		}
		if r.size > maxDeflateRatio*c+4096 {
			return nil, fmt.Errorf("zip record %s declares %d bytes from %d compressed: impossible for deflate", name, r.size, c)
		}
		if r.size > maxInflated {
			return nil, fmt.Errorf("zip record %s is compressed and inflates to %d bytes, more than the %d MB allowed (torch.save stores records uncompressed; re-save the checkpoint with torch.save)", name, r.size, maxInflated>>20)
		}
	default:
		return nil, fmt.Errorf("zip record %s uses compression method %d (torch.save stores records uncompressed)", name, zf.Method)
	}
	a.records[name] = r
	return r, nil
}

func (a *torchArchive) readAll(r *record) ([]byte, error) {
	ra, off, err := r.readerAt()
	if err != nil {
		return nil, err
	}
	b := make([]byte, r.size)
	if _, err := ra.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("zip record %s: %w", r.name, err)
	}
	return b, nil
}

// load unpickles data.pkl: scanned first, then gopickle with the allow-list
// and a persistent-id loader that records storages without reading them.
func (a *torchArchive) load() (result any, err error) {
	r, err := a.record(a.prefix + "data.pkl")
	if err != nil {
		return nil, err
	}
	if r.size > maxPickleLen {
		return nil, fmt.Errorf("data.pkl is %d bytes (at most %d)", r.size, maxPickleLen)
	}
	data, err := a.readAll(r)
	if err != nil {
		return nil, err
	}
	if err := scanPickle(data); err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	// Last line of defence: the scan above makes gopickle's known panics
	// unreachable; should an unknown one remain, it becomes an error.
	defer func() {
		if p := recover(); p != nil {
			result, err = nil, fmt.Errorf("data.pkl: malformed pickle (unpickler failed: %v)", p)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findClass
	u.PersistentLoad = a.persistentLoad
	v, err := u.Load()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	return v, nil
}

// persistentLoad resolves ('storage', torch.<T>Storage, key, location, numel)
// to a storageRef after checking the record holds exactly numel elements.
func (a *torchArchive) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() != 5 {
		return nil, fmt.Errorf("persistent id is %s, want a 5-tuple ('storage', type, key, location, numel)", describe(pid))
	}
	if s, _ := t.Get(0).(string); s != "storage" {
		return nil, fmt.Errorf("persistent id of kind %s, want 'storage'", describe(t.Get(0)))
	}
	cls, ok := t.Get(1).(*storageClass)
	if !ok {
		return nil, fmt.Errorf("storage type is %s, not a torch storage class", describe(t.Get(1)))
	}
	key, ok := t.Get(2).(string)
	if !ok {
		return nil, fmt.Errorf("storage key is %s, not a string", describe(t.Get(2)))
	}
	numel, ok := t.Get(4).(int)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %q: element count %s is not a non-negative integer", key, describe(t.Get(4)))
	}
	if st, ok := a.storages[key]; ok {
		if st.dtype != cls.dtype || st.numel != int64(numel) {
			return nil, fmt.Errorf("storage %q is declared twice with different types or sizes", key)
		}
		return st, nil
	}
	rec, err := a.record(a.prefix + "data/" + key)
	if err != nil {
		return nil, fmt.Errorf("storage %q: %w", key, err)
	}
	isz := cls.dtype.Size()
	if int64(numel) > rec.size/isz || int64(numel)*isz != rec.size {
		return nil, fmt.Errorf("storage %q declares %d %s elements (%.0f bytes) but its record %s holds %d bytes",
			key, numel, cls.dtype, float64(numel)*float64(isz), rec.name, rec.size)
	}
	st := &storageRef{key: key, dtype: cls.dtype, numel: int64(numel), rec: rec}
	a.storages[key] = st
	return st, nil
}

// readTensor converts a tensor of a floating-point storage to float32.
func readTensor(t *tensorRef) ([]float32, error) {
	st := t.storage
	if !st.dtype.isFloat() {
		return nil, fmt.Errorf("dtype %s: model weights must be floating point", st.dtype)
	}
	if t.numel == 0 {
		return nil, fmt.Errorf("shape %v holds no elements", t.shape)
	}
	ra, base, err := st.rec.readerAt()
	if err != nil {
		return nil, err
	}
	isz := st.dtype.Size()
	contiguous := t.contiguous()
	span := t.numel
	if !contiguous {
		span = t.span()
	}
	buf := make([]float32, span)
	off := base + t.offset*isz
	switch st.dtype {
	case dtFloat32:
		err = readF32(ra, off, buf)
	case dtFloat16:
		err = readHalf(ra, off, buf, npy.Float16ToFloat32)
	case dtBFloat16:
		err = readHalf(ra, off, buf, bf16ToF32)
	case dtFloat64:
		err = readF64(ra, off, buf)
	}
	if err != nil {
		return nil, fmt.Errorf("storage %q (record %s): %w", st.key, st.rec.name, err)
	}
	if contiguous {
		return buf, nil
	}
	return gather(buf, t.shape, t.stride), nil
}

// gather copies a strided view (offsets relative to src[0]) into row-major order.
func gather(src []float32, shape []int, stride []int64) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	out := make([]float32, n)
	idx := make([]int, len(shape))
	var pos int64
	for i := range out {
		out[i] = src[pos]
		for d := len(shape) - 1; d >= 0; d-- {
			idx[d]++
			pos += stride[d]
			if idx[d] < shape[d] {
				break
			}
			pos -= int64(idx[d]) * stride[d]
			idx[d] = 0
		}
	}
	return out
}
