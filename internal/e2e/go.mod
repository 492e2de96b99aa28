module github.com/xenckpt/xenckpt/internal/e2e

go 1.26.0

require (
	github.com/stretchr/testify v1.12.1
	github.com/xenckpt/xenckpt v0.0.0
)

require (
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/hashicorp/go-multierror v1.1.1 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/ulikunitz/xz v0.5.17 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/xenckpt/xenckpt => ../..
