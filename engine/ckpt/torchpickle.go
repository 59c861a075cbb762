package ckpt

import (
	"fmt"
	"math"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// The objects a torch.save pickle may build. Each is inert data: calling an
// allowed global only records what the file says, after checking it.

// allowedGlobals is the allow-list: every global a GeCA checkpoint (or any
// plain torch.save of tensors, dicts and an argparse.Namespace) refers to.
// Anything else (os.system, builtins.eval, subprocess.Popen, ...) is refused
// by name before the unpickler runs.
var allowedGlobals = map[string]func() any{
	"collections.OrderedDict":         nil, // resolved by gopickle itself
	"torch._utils._rebuild_tensor_v2": func() any { return &rebuildTensor{} },
	"torch._utils._rebuild_parameter": func() any { return &rebuildParameter{} },
	"torch.Size":                      func() any { return &sizeClass{} },
	"argparse.Namespace":              func() any { return &namespaceClass{} },
	"torch.FloatStorage":              storageOf(dtFloat32),
	"torch.HalfStorage":               storageOf(dtFloat16),
	"torch.BFloat16Storage":           storageOf(dtBFloat16),
	"torch.DoubleStorage":             storageOf(dtFloat64),
	"torch.LongStorage":               storageOf(dtInt64),
	"torch.IntStorage":                storageOf(dtInt32),
	"torch.ShortStorage":              storageOf(dtInt16),
	"torch.CharStorage":               storageOf(dtInt8),
	"torch.ByteStorage":               storageOf(dtUint8),
	"torch.BoolStorage":               storageOf(dtBool),
}

func storageOf(d dtype) func() any { return func() any { return &storageClass{d} } }

// findClass is the unpickler's FindClass: the allow-list again (the scan has
// already refused anything else; this is the second lock on the door).
func findClass(module, name string) (any, error) {
	q := module + "." + name
	mk, ok := allowedGlobals[q]
	if !ok || mk == nil {
		return nil, &refusedGlobalError{q}
	}
	return mk(), nil
}

// dtype is a torch storage element type.
type dtype uint8

const (
	dtFloat32 dtype = iota
	dtFloat16
	dtBFloat16
	dtFloat64
	dtInt64
	dtInt32
	dtInt16
	dtInt8
	dtUint8
	dtBool
)

var dtypeInfo = [...]struct {
	name string
	size int64
}{
	dtFloat32:  {"float32", 4},
	dtFloat16:  {"float16", 2},
	dtBFloat16: {"bfloat16", 2},
	dtFloat64:  {"float64", 8},
	dtInt64:    {"int64", 8},
	dtInt32:    {"int32", 4},
	dtInt16:    {"int16", 2},
	dtInt8:     {"int8", 1},
	dtUint8:    {"uint8", 1},
	dtBool:     {"bool", 1},
}

func (d dtype) String() string { return dtypeInfo[d].name }
func (d dtype) Size() int64    { return dtypeInfo[d].size }
func (d dtype) isFloat() bool  { return d <= dtFloat64 }

// storageClass is torch.<Type>Storage as named inside a persistent id.
type storageClass struct{ dtype dtype }

// storageRef is one storage of the archive: a zip record holding numel
// elements. Its bytes are read only when a tensor that uses it is needed.
type storageRef struct {
	key   string
	dtype dtype
	numel int64
	rec   *record
}

// tensorRef is a tensor as _rebuild_tensor_v2 describes it: a strided view of
// a storage, checked to lie inside it.
type tensorRef struct {
	storage *storageRef
	offset  int64
	shape   []int
	stride  []int64
	numel   int64
}

type rebuildTensor struct{}

// Call checks _rebuild_tensor_v2(storage, storage_offset, size, stride,
// requires_grad, backward_hooks[, metadata]) and returns a tensorRef.
func (*rebuildTensor) Call(args ...any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 called with %d arguments, want 6 or 7", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: first argument is %s, not a storage", describe(args[0]))
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset %s is not a non-negative integer", describe(args[1]))
	}
	size, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	return newTensorRef(st, int64(off), size, stride)
}

func newTensorRef(st *storageRef, off int64, size, stride []int64) (*tensorRef, error) {
	if len(size) != len(stride) {
		return nil, fmt.Errorf("tensor has %d sizes but %d strides", len(size), len(stride))
	}
	if len(size) > maxDims {
		return nil, fmt.Errorf("tensor has %d dimensions (at most %d)", len(size), maxDims)
	}
	t := &tensorRef{storage: st, offset: off, shape: make([]int, len(size)), stride: stride}
	// The element count may not exceed the storage's: that bounds what we
	// allocate by what the file holds (broadcast views with stride 0 and more
	// elements than their storage are not used by state dicts).
	zero := false
	for i, d := range size {
		if d < 0 || stride[i] < 0 {
			return nil, fmt.Errorf("tensor size %v / stride %v has a negative entry", size, stride)
		}
		zero = zero || d == 0
		t.shape[i] = int(d)
	}
	n := int64(0)
	if !zero {
		n = 1
		for _, d := range size {
			if n > st.numel/d {
				return nil, fmt.Errorf("tensor of size %v has more elements than its storage %q (%d)", size, st.key, st.numel)
			}
			n *= d
		}
	}
	t.numel = n
	if n == 0 {
		if off > st.numel {
			return nil, fmt.Errorf("tensor storage offset %d is past the end of storage %q (%d elements)", off, st.key, st.numel)
		}
		return t, nil
	}
	// The last element addressed: off + Σ (size_i − 1)·stride_i, computed
	// without overflow (each term is below numel·stride and we stop once the
	// sum passes the storage).
	last := off
	if last >= st.numel {
		return nil, fmt.Errorf("tensor storage offset %d is past the end of storage %q (%d elements)", off, st.key, st.numel)
	}
	for i, d := range size {
		if d <= 1 || stride[i] == 0 {
			continue
		}
		if stride[i] > (st.numel-1-last)/(d-1) {
			return nil, fmt.Errorf("tensor of size %v, stride %v at offset %d runs past the end of storage %q (%d elements)", size, stride, off, st.key, st.numel)
		}
		last += (d - 1) * stride[i]
	}
	return t, nil
}

// contiguous reports whether t is a row-major block of its storage.
func (t *tensorRef) contiguous() bool {
	want := int64(1)
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= int64(t.shape[i])
	}
	return true
}

// span returns the number of storage elements from offset to the last one
// the tensor addresses, inclusive.
func (t *tensorRef) span() int64 {
	if t.numel == 0 {
		return 0
	}
	last := int64(0)
	for i, d := range t.shape {
		last += int64(d-1) * t.stride[i]
	}
	return last + 1
}

func intTuple(v any, what string) ([]int64, error) {
	tp, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("tensor %s is %s, not a tuple", what, describe(v))
	}
	if tp.Len() > maxDims {
		return nil, fmt.Errorf("tensor %s has %d entries (at most %d)", what, tp.Len(), maxDims)
	}
	out := make([]int64, tp.Len())
	for i := range out {
		switch x := tp.Get(i).(type) {
		case int:
			out[i] = int64(x)
		case *big.Int:
			return nil, fmt.Errorf("tensor %s entry %d does not fit in 64 bits", what, i)
		default:
			return nil, fmt.Errorf("tensor %s entry %d is %s, not an integer", what, i, describe(x))
		}
	}
	return out, nil
}

type rebuildParameter struct{}

// Call handles _rebuild_parameter(data, requires_grad, backward_hooks): the
// parameter is its data.
func (*rebuildParameter) Call(args ...any) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("_rebuild_parameter called with %d arguments, want 3", len(args))
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter of %s, not a tensor", describe(args[0]))
	}
	return t, nil
}

type sizeClass struct{}

// Call handles torch.Size((d0, d1, ...)).
func (*sizeClass) Call(args ...any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("torch.Size called with %d arguments", len(args))
	}
	if _, err := intTuple(args[0], "torch.Size"); err != nil {
		return nil, err
	}
	return args[0], nil
}

// Namespace is a pickled argparse.Namespace: its attributes.
type Namespace struct{ attrs map[string]any }

type namespaceClass struct{}

func (*namespaceClass) PyNew(args ...any) (any, error) {
	return &Namespace{attrs: map[string]any{}}, nil
}

func (*namespaceClass) Call(args ...any) (any, error) {
	if len(args) != 0 {
		return nil, fmt.Errorf("argparse.Namespace called with positional arguments")
	}
	return &Namespace{attrs: map[string]any{}}, nil
}

// PyDictSet is how BUILD restores the attributes.
func (n *Namespace) PyDictSet(key, value any) error {
	k, ok := key.(string)
	if !ok {
		return fmt.Errorf("argparse.Namespace attribute name is %s, not a string", describe(key))
	}
	n.attrs[k] = value
	return nil
}

// describe names the Go type of a pickled value without formatting it (a
// pickle can build cyclic structures, which %v would never finish printing).
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "a bool"
	case int, *big.Int:
		return "an int"
	case float64:
		if math.IsNaN(x) {
			return "a float (NaN)"
		}
		return "a float"
	case string:
		return "a string"
	case []byte:
		return "bytes"
	case *types.Tuple:
		return "a tuple"
	case *types.List:
		return "a list"
	case *types.Dict:
		return "a dict"
	case *types.OrderedDict:
		return "an OrderedDict"
	case *tensorRef:
		return "a tensor"
	case *storageRef:
		return "a storage"
	case *Namespace:
		return "an argparse.Namespace"
	}
	return fmt.Sprintf("a %T", v)
}
