package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"geca/internal/membudget"
	"geca/internal/safefile"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs the
// IDX files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTClasses are the names of the 10 Fashion-MNIST labels.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// ErrNoFashionMNIST is returned when the IDX files are not installed.
var ErrNoFashionMNIST = errors.New("Fashion-MNIST not found: install it with `apt-get install dataset-fashion-mnist` (or pass --data-dir DIR holding train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz)")

// LoadFashionMNIST reads the "train" or "t10k" split from dir (FashionMNISTDir
// when empty). Files may be gzip-compressed (.gz) or raw.
func LoadFashionMNIST(dir, split string) (*Dataset, error) {
	if dir == "" {
		dir = FashionMNISTDir
	}
	if split != "train" && split != "t10k" {
		return nil, fmt.Errorf("unknown Fashion-MNIST split %q (train or t10k)", split)
	}
	find := func(base string) (string, error) {
		for _, p := range []string{filepath.Join(dir, base+".gz"), filepath.Join(dir, base)} {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("%w: no %s(.gz) in %s", ErrNoFashionMNIST, base, dir)
	}
	ip, err := find(split + "-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	lp, err := find(split + "-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	// Both headers first: their sizes are checked against each other and
	// the memory limit before any data is inflated.
	imgs, err := openIDXFile(ip)
	if err != nil {
		return nil, err
	}
	defer imgs.Close()
	labs, err := openIDXFile(lp)
	if err != nil {
		return nil, err
	}
	defer labs.Close()
	if len(imgs.dims) != 3 || len(labs.dims) != 1 || imgs.dims[0] != labs.dims[0] {
		return nil, fmt.Errorf("%s %v and %s %v: want N×H×W images and N labels", ip, imgs.dims, lp, labs.dims)
	}
	n, h, w := imgs.dims[0], imgs.dims[1], imgs.dims[2]
	// Bytes as read, pixels as float32, labels as ints.
	if err := membudget.Check(fmt.Sprintf("%s: %d images of %dx%d", ip, n, h, w),
		membudget.Sum(membudget.Bytes(n, h, w, 5), membudget.Bytes(n, 9))); err != nil {
		return nil, err
	}
	img, err := imgs.read()
	if err != nil {
		return nil, err
	}
	lab, err := labs.read()
	if err != nil {
		return nil, err
	}
	d := &Dataset{N: img.Dims[0], H: img.Dims[1], W: img.Dims[2], C: 1, Classes: FashionMNISTClasses,
		Pixels: make([]float32, len(img.Data)), Labels: make([]int, len(lab.Data))}
	for i, v := range img.Data {
		d.Pixels[i] = float32(v)/127.5 - 1
	}
	for i, v := range lab.Data {
		d.Labels[i] = int(v)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", lp, err)
	}
	return d, nil
}

// IDX is an unsigned-byte IDX array (the MNIST file format).
type IDX struct {
	Dims []int
	Data []uint8
}

// ReadIDXFile reads an IDX file, gunzipping it when it starts with the gzip
// magic. The sizes its header declares are checked (against the file, what
// gzip can inflate it to, and the memory limit) before anything is
// inflated or allocated.
func ReadIDXFile(path string) (*IDX, error) {
	f, err := openIDXFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.read()
}

// maxIDXBytes bounds what a header may claim (Fashion-MNIST's images are
// 47 MB).
const maxIDXBytes = 1 << 30

// maxGzipRatio bounds what deflate can inflate a byte to (about 1032).
const maxGzipRatio = 1100

// idxFile is an IDX file whose header has been read and checked.
type idxFile struct {
	path  string
	f     *os.File
	r     io.Reader
	gz    *gzip.Reader
	dims  []int
	total int
}

func (x *idxFile) Close() error {
	if x.gz != nil {
		x.gz.Close()
	}
	return x.f.Close()
}

// openIDXFile opens path (a regular file only) and reads its header.
func openIDXFile(path string) (*idxFile, error) {
	f, fi, err := safefile.OpenRegular(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", ErrNoFashionMNIST, err)
		}
		return nil, err
	}
	x := &idxFile{path: path, f: f}
	br := bufio.NewReader(f)
	x.r = br
	limit := fi.Size() // what the data may hold: the file, or what it inflates to
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		x.r, x.gz = gz, gz
		limit = membudget.Bytes(int(fi.Size()), maxGzipRatio)
	}
	dims, err := readIDXHeader(x.r)
	if err != nil {
		x.Close()
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	x.dims, x.total = dims, int(membudget.Bytes(dims...))
	if int64(x.total) > limit {
		x.Close()
		return nil, fmt.Errorf("%s: IDX dimensions %v declare %d bytes, more than the %d-byte file can hold", path, dims, x.total, fi.Size())
	}
	return x, nil
}

// read reads the data the header announced.
func (x *idxFile) read() (*IDX, error) {
	if err := membudget.Check(fmt.Sprintf("%s: IDX data of dimensions %v", x.path, x.dims), int64(x.total)); err != nil {
		return nil, err
	}
	out := &IDX{Dims: x.dims, Data: make([]uint8, x.total)}
	if n, err := io.ReadFull(x.r, out.Data); err != nil {
		return nil, fmt.Errorf("%s: IDX data truncated: %d of %d bytes: %v", x.path, n, x.total, err)
	}
	return out, nil
}

// ReadIDX reads an unsigned-byte IDX stream: magic 0x0000 08 NDIM, NDIM
// big-endian uint32 sizes, then the bytes.
func ReadIDX(r io.Reader) (*IDX, error) {
	dims, err := readIDXHeader(r)
	if err != nil {
		return nil, err
	}
	total := int(membudget.Bytes(dims...))
	if err := membudget.Check(fmt.Sprintf("IDX data of dimensions %v", dims), int64(total)); err != nil {
		return nil, err
	}
	x := &IDX{Dims: dims, Data: make([]uint8, total)}
	if n, err := io.ReadFull(r, x.Data); err != nil {
		return nil, fmt.Errorf("IDX data truncated: %d of %d bytes: %v", n, total, err)
	}
	return x, nil
}

// readIDXHeader reads the magic and the dimensions, each at least 1 and
// their product at most maxIDXBytes.
func readIDXHeader(r io.Reader) ([]int, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("reading IDX header: %v", err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("not an IDX file (magic %x)", magic)
	}
	if magic[2] != 0x08 {
		return nil, fmt.Errorf("IDX element type 0x%02x not supported (only unsigned bytes, 0x08)", magic[2])
	}
	nd := int(magic[3])
	if nd < 1 || nd > 4 {
		return nil, fmt.Errorf("IDX with %d dimensions not supported", nd)
	}
	dims := make([]int, nd)
	total := 1
	for i := range dims {
		var v uint32
		if err := binary.Read(r, binary.BigEndian, &v); err != nil {
			return nil, fmt.Errorf("reading IDX dimension %d: %v", i, err)
		}
		dims[i] = int(v)
		total *= int(v)
		if total > maxIDXBytes || v == 0 {
			return nil, fmt.Errorf("IDX dimensions %v invalid or too large", dims[:i+1])
		}
	}
	return dims, nil
}
