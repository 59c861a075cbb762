package remote

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"geca/engine"

	"gorgonia.org/tensor"
)

// modelHash identifies a model by its config and weights, so a worker that
// already holds it (from an earlier connection) needs no second upload.
func modelHash(m *engine.Model) ([32]byte, error) {
	h := sha256.New()
	cfg, err := json.Marshal(m.Cfg)
	if err != nil {
		return [32]byte{}, err
	}
	var buf [8]byte
	put := func(v uint64) { binary.LittleEndian.PutUint64(buf[:], v); h.Write(buf[:]) }
	put(uint64(len(cfg)))
	h.Write(cfg)
	ts := m.Tensors()
	chunk := make([]byte, 0, 1<<16)
	for _, name := range m.Names() {
		t := ts[name]
		put(uint64(len(name)))
		h.Write([]byte(name))
		sh := t.Shape()
		put(uint64(len(sh)))
		for _, s := range sh {
			put(uint64(s))
		}
		data, ok := t.Data().([]float32)
		if !ok {
			return [32]byte{}, fmt.Errorf("tensor %s is not float32", name)
		}
		for _, v := range data {
			chunk = binary.LittleEndian.AppendUint32(chunk, math.Float32bits(v))
			if len(chunk) == cap(chunk) {
				h.Write(chunk)
				chunk = chunk[:0]
			}
		}
		h.Write(chunk)
		chunk = chunk[:0]
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

// modelCache keeps the most recently used models of a worker, shared by its
// connections.
type modelCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cachedModel, most recent first
	byKey map[[32]byte]*list.Element
}

type cachedModel struct {
	hash  [32]byte
	model *engine.Model
}

func newModelCache(max int) *modelCache {
	return &modelCache{max: max, order: list.New(), byKey: map[[32]byte]*list.Element{}}
}

func (c *modelCache) get(h [32]byte) *engine.Model {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[h]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedModel).model
}

func (c *modelCache) put(h [32]byte, m *engine.Model) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[h]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byKey[h] = c.order.PushFront(&cachedModel{h, m})
	for c.order.Len() > c.max {
		e := c.order.Back()
		c.order.Remove(e)
		delete(c.byKey, e.Value.(*cachedModel).hash)
		// Connections still using the model keep it alive until they close.
	}
}

// modelTensors turns an upload into the tensors engine.NewModel checks.
func modelTensors(msgs []*tensorMsg) (map[string]*tensor.Dense, error) {
	out := make(map[string]*tensor.Dense, len(msgs))
	for _, t := range msgs {
		if _, dup := out[t.Name]; dup {
			return nil, fmt.Errorf("tensor %s sent twice", t.Name)
		}
		if len(t.Shape) == 0 {
			return nil, fmt.Errorf("tensor %s has no shape", t.Name)
		}
		for _, s := range t.Shape {
			if s < 1 {
				return nil, fmt.Errorf("tensor %s has shape %v", t.Name, t.Shape)
			}
		}
		out[t.Name] = tensor.New(tensor.WithShape(t.Shape...), tensor.WithBacking(t.Data))
	}
	return out, nil
}
