// Command mkabi regenerates ../../zabi.go (package magic) from the Xen
// public headers: go generate ./magic (needs gcc and libxen-dev).
package main

import (
	"context"
	"flag"
	"log"
	"os"

	"github.com/xenckpt/xenckpt/magic/internal/xenhdr"
)

func main() {
	out := flag.String("o", "zabi.go", "output file")
	flag.Parse()
	v, err := xenhdr.Probe(context.Background(), "")
	if err != nil {
		log.Fatal(err)
	}
	src, err := xenhdr.Render(v)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		log.Fatal(err)
	}
}
