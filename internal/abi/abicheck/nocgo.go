//go:build !cgo

package abicheck

func table() []Row { return nil }
