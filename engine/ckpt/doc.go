// Package ckpt reads GeCA checkpoints without running anything they contain:
// the PyTorch zip files the official trainer writes (torch.save, pickle read
// through an allow-list of globals) and safetensors files (read and written;
// our own files keep the engine.Config as JSON in the "geca.config" metadata).
// Every size, shape, offset and dtype in a file is checked against the file
// before memory is allocated for it, and every error names the file.
package ckpt
