//go:build ignore

// gen writes geca_arch.h (ArchHeader) next to kernels.cu and into emu/.
package main

import (
	"log"
	"os"

	"geca/engine/cuda"
)

func main() {
	for _, path := range []string{"geca_arch.h", "emu/geca_arch.h"} {
		if err := os.WriteFile(path, []byte(cuda.ArchHeader()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
