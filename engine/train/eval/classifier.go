// Package eval measures how recognisable generated images are: an independent
// classifier (a one-hidden-layer MLP trained on the real training images)
// labels samples, and the agreement with the requested class is the score.
package eval

import (
	"math"
	"math/rand/v2"
	"sync"

	"geca/engine/compute"
	"geca/engine/data"
)

// Classifier is a ReLU MLP: logits = W2·relu(W1·x + b1) + b2.
type Classifier struct {
	In, Hidden, Classes int
	W1, B1, W2, B2      []float32
}

// TrainClassifier trains the MLP with mini-batch SGD with momentum on ds
// (pixels in [−1, 1]) for the given number of epochs. It is deterministic for
// a seed.
func TrainClassifier(ds *data.Dataset, hidden, epochs int, seed uint64) *Classifier {
	in := ds.H * ds.W * ds.C
	K := len(ds.Classes)
	r := rand.New(rand.NewPCG(seed, 99))
	c := &Classifier{In: in, Hidden: hidden, Classes: K,
		W1: make([]float32, hidden*in), B1: make([]float32, hidden), W2: make([]float32, K*hidden), B2: make([]float32, K)}
	for i := range c.W1 {
		c.W1[i] = float32(r.NormFloat64() * math.Sqrt(2/float64(in)))
	}
	for i := range c.W2 {
		c.W2[i] = float32(r.NormFloat64() * math.Sqrt(1/float64(hidden)))
	}
	params := [][]float32{c.W1, c.B1, c.W2, c.B2}
	vel := make([][]float32, len(params))
	grads := make([][]float32, len(params))
	for i, p := range params {
		vel[i] = make([]float32, len(p))
		grads[i] = make([]float32, len(p))
	}
	const bs = 100
	x := make([]float32, bs*in)
	h := make([]float32, bs*hidden)
	logits := make([]float32, bs*K)
	dh := make([]float32, bs*hidden)
	steps := 0
	total := epochs * (ds.N / bs)
	for e := 0; e < epochs; e++ {
		perm := r.Perm(ds.N)
		for s := 0; s+bs <= ds.N; s += bs {
			lr := float32(0.05 * 0.5 * (1 + math.Cos(math.Pi*float64(steps)/float64(total))))
			steps++
			for i := 0; i < bs; i++ {
				copy(x[i*in:(i+1)*in], ds.Image(perm[s+i]))
			}
			c.forward(x, h, logits, bs)
			// Softmax cross-entropy gradient, averaged over the batch.
			for i := 0; i < bs; i++ {
				row := logits[i*K : (i+1)*K]
				softmax(row)
				row[ds.Labels[perm[s+i]]] -= 1
				for k := range row {
					row[k] /= bs
				}
			}
			for _, g := range grads {
				clear(g)
			}
			compute.Gemm(true, false, K, hidden, bs, 1, logits, K, h, hidden, 0, grads[2], hidden)
			for i := 0; i < bs; i++ {
				for k := 0; k < K; k++ {
					grads[3][k] += logits[i*K+k]
				}
			}
			compute.Gemm(false, false, bs, hidden, K, 1, logits, K, c.W2, hidden, 0, dh, hidden)
			for i := range dh {
				if h[i] <= 0 {
					dh[i] = 0
				}
			}
			compute.Gemm(true, false, hidden, in, bs, 1, dh, hidden, x, in, 0, grads[0], in)
			for i := 0; i < bs; i++ {
				for j := 0; j < hidden; j++ {
					grads[1][j] += dh[i*hidden+j]
				}
			}
			for pi, p := range params {
				v, g := vel[pi], grads[pi]
				for i := range p {
					v[i] = 0.9*v[i] + g[i]
					p[i] -= lr * v[i]
				}
			}
		}
	}
	return c
}

func softmax(row []float32) {
	mx := row[0]
	for _, v := range row {
		mx = max(mx, v)
	}
	var sum float64
	for k, v := range row {
		e := math.Exp(float64(v - mx))
		row[k] = float32(e)
		sum += e
	}
	for k := range row {
		row[k] = float32(float64(row[k]) / sum)
	}
}

func (c *Classifier) forward(x, h, logits []float32, n int) {
	for i := 0; i < n; i++ {
		copy(h[i*c.Hidden:(i+1)*c.Hidden], c.B1)
		copy(logits[i*c.Classes:(i+1)*c.Classes], c.B2)
	}
	compute.Gemm(false, true, n, c.Hidden, c.In, 1, x, c.In, c.W1, c.In, 1, h, c.Hidden)
	for i := range h[:n*c.Hidden] {
		if h[i] < 0 {
			h[i] = 0
		}
	}
	compute.Gemm(false, true, n, c.Classes, c.Hidden, 1, h, c.Hidden, c.W2, c.Hidden, 1, logits, c.Classes)
}

// Predict returns the most likely class of each of the n images in imgs
// (values clamped to [−1, 1] first, as an 8-bit image would be).
func (c *Classifier) Predict(imgs []float32, n int) []int {
	out := make([]int, n)
	const bs = 256
	var wg sync.WaitGroup
	for s := 0; s < n; s += bs {
		e := min(s+bs, n)
		wg.Add(1)
		go func(s, e int) {
			defer wg.Done()
			m := e - s
			x := make([]float32, m*c.In)
			for i, v := range imgs[s*c.In : e*c.In] {
				x[i] = min(max(v, -1), 1)
			}
			h := make([]float32, m*c.Hidden)
			logits := make([]float32, m*c.Classes)
			c.forward(x, h, logits, m)
			for i := 0; i < m; i++ {
				best := 0
				for k := 1; k < c.Classes; k++ {
					if logits[i*c.Classes+k] > logits[i*c.Classes+best] {
						best = k
					}
				}
				out[s+i] = best
			}
		}(s, e)
	}
	wg.Wait()
	return out
}

// Accuracy is the fraction of ds the classifier labels correctly.
func (c *Classifier) Accuracy(ds *data.Dataset) float64 {
	pred := c.Predict(ds.Pixels, ds.N)
	ok := 0
	for i, p := range pred {
		if p == ds.Labels[i] {
			ok++
		}
	}
	return float64(ok) / float64(ds.N)
}
