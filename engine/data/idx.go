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
	img, err := ReadIDXFile(ip)
	if err != nil {
		return nil, err
	}
	lab, err := ReadIDXFile(lp)
	if err != nil {
		return nil, err
	}
	if len(img.Dims) != 3 || len(lab.Dims) != 1 || img.Dims[0] != lab.Dims[0] {
		return nil, fmt.Errorf("%s %v and %s %v: want N×H×W images and N labels", ip, img.Dims, lp, lab.Dims)
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

// ReadIDXFile reads an IDX file, gunzipping it when it starts with the gzip magic.
func ReadIDXFile(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %v", ErrNoFashionMNIST, err)
		}
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		defer gz.Close()
		r = gz
	}
	x, err := ReadIDX(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return x, nil
}

// maxIDXBytes bounds what a header may claim, so a corrupt file cannot ask for
// an absurd allocation.
const maxIDXBytes = 1 << 31

// ReadIDX reads an unsigned-byte IDX stream: magic 0x0000 08 NDIM, NDIM
// big-endian uint32 sizes, then the bytes.
func ReadIDX(r io.Reader) (*IDX, error) {
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
	x := &IDX{Dims: make([]int, nd)}
	total := 1
	for i := range x.Dims {
		var v uint32
		if err := binary.Read(r, binary.BigEndian, &v); err != nil {
			return nil, fmt.Errorf("reading IDX dimension %d: %v", i, err)
		}
		x.Dims[i] = int(v)
		total *= int(v)
		if total > maxIDXBytes || v == 0 {
			return nil, fmt.Errorf("IDX dimensions %v invalid or too large", x.Dims[:i+1])
		}
	}
	x.Data = make([]uint8, total)
	if n, err := io.ReadFull(r, x.Data); err != nil {
		return nil, fmt.Errorf("IDX data truncated: %d of %d bytes: %v", n, total, err)
	}
	return x, nil
}
