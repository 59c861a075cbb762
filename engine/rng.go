package engine

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
)

// Stream is one named source of random numbers. The sampler keeps one per
// purpose (initial noise, seed cell, update masks, DDPM noise) so that changing
// how many draws one purpose makes does not shift the others, and so any of
// them can be replaced by recorded values to replay a PyTorch run exactly.
type Stream interface {
	// Uniform fills dst with draws from U[0, 1).
	Uniform(dst []float32) error
	// Normal fills dst with draws from N(0, 1).
	Normal(dst []float32) error
	// Clone returns an independent stream in the same position (for branching).
	Clone() Stream
}

// Stream names used by the sampler.
const (
	StreamNoise = "noise" // the initial x_T
	StreamSeed  = "seed"  // the centre cell's C_out values
	StreamMask  = "mask"  // the per-cell stochastic update masks
	StreamDDPM  = "ddpm"  // the noise of each reverse step
)

// PCGStream is a seedable stream (PCG-DXSM from math/rand/v2). Its position is
// part of its value, so copying it branches the sequence.
type PCGStream struct {
	pcg rand.PCG
}

// NewStream returns the stream called name for a run seeded with seed. Different
// names give independent sequences for the same seed.
func NewStream(seed uint64, name string) *PCGStream {
	h := fnv.New64a()
	h.Write([]byte(name))
	s := &PCGStream{}
	s.pcg.Seed(seed, h.Sum64())
	return s
}

func (s *PCGStream) Uniform(dst []float32) error {
	for i := range dst {
		// 24 random mantissa bits: exactly representable, strictly below 1.
		dst[i] = float32(s.pcg.Uint64()>>40) * (1.0 / (1 << 24))
	}
	return nil
}

func (s *PCGStream) Normal(dst []float32) error {
	r := rand.New(&s.pcg)
	for i := range dst {
		dst[i] = float32(r.NormFloat64())
	}
	return nil
}

func (s *PCGStream) Clone() Stream {
	c := *s
	return &c
}

// ReplayStream hands out recorded values in order (for example the tensors a
// PyTorch run drew), whichever distribution is asked for. It reports an error
// once the recording is exhausted instead of inventing numbers.
type ReplayStream struct {
	Name   string
	Values []float32
	pos    int
}

func (r *ReplayStream) take(dst []float32) error {
	if r.pos+len(dst) > len(r.Values) {
		return fmt.Errorf("replayed stream %q exhausted: %d values recorded, %d requested so far", r.Name, len(r.Values), r.pos+len(dst))
	}
	copy(dst, r.Values[r.pos:])
	r.pos += len(dst)
	return nil
}

func (r *ReplayStream) Uniform(dst []float32) error { return r.take(dst) }
func (r *ReplayStream) Normal(dst []float32) error  { return r.take(dst) }
func (r *ReplayStream) Clone() Stream               { c := *r; return &c }

// Streams groups the named streams of one sampling run.
type Streams struct {
	Noise, Seed, Mask, DDPM Stream
}

// NewStreams returns the four seeded streams of a run.
func NewStreams(seed uint64) *Streams {
	return &Streams{
		Noise: NewStream(seed, StreamNoise),
		Seed:  NewStream(seed, StreamSeed),
		Mask:  NewStream(seed, StreamMask),
		DDPM:  NewStream(seed, StreamDDPM),
	}
}

// Clone copies every stream at its current position.
func (s *Streams) Clone() *Streams {
	return &Streams{Noise: s.Noise.Clone(), Seed: s.Seed.Clone(), Mask: s.Mask.Clone(), DDPM: s.DDPM.Clone()}
}
