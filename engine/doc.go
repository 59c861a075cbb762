// Package engine is the GeCA denoiser (Generative Cellular Automata, arXiv
// 2407.03018) exactly as the official PyTorch code computes it, on the CPU.
//
// params.go describes GeCA's parameters once: every module of the official
// module tree with its state-dict keys, its sizes for a Config, its
// initialisation and its role, and the names of the six chunks of the
// block's adaLN modulation. geca.go builds the module tree from it (GeCA:
// TimestepEmbedder, LabelEmbedder, the Block with its Attention and
// FeedForward, FinalLayer), each module with a Forward that says what it
// computes (docs/model.md §3–§4); the trainer runs that tree, and so does a
// test that holds the fast path to it.
//
// The fast path is what sampling runs. A Model holds the weights under their
// official state_dict names (NewModel checks every key, shape and value).
// Model.Condition computes the conditioning c = temb(t) + yemb(y); Seed
// prepares a grid with its single random centre pix-cell; an Updater applies
// the cell update rule f — cell embedding plus the 1-D positional code,
// adaLN-modulated 3x3 local attention and MLP, final layer, stochastic
// per-cell mask, residual update of C_out and C_h — once (Update) or M times
// (Call); CFGCombine forms the guided output of a conditional/unconditional
// batch.
//
// The grid is a State stored cell-major ([B][H][W][C]), so every per-cell
// layer is one matrix product over the cells. An Updater does only the work
// the update rule needs: cells whose mask is 0 compute no query, attention,
// MLP or final layer, and cells whose channels did not change keep their
// embedding, keys and values; the results equal computing every cell (the
// Dense switch does that, as the official code does). The numeric kernels
// live in engine/compute; an Accelerator (engine/cuda) runs the updates on
// another device.
//
// Random draws (seed cell, update masks) come from named Streams, which a
// ReplayStream can replace with recorded values to replay a PyTorch run.
package engine
