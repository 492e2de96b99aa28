// Package stream reads and writes Xen's save/migration image format: the
// libxc migration stream v2/v3, optionally inside the libxl v2 stream,
// optionally behind xl's save-file header. Images it writes are images
// Xen 4.17's own tools accept, and it reads images Xen writes.
//
// The package is pure: it does no I/O beyond the io.Reader and io.Writer it
// is given and reads nothing from the environment.
//
// (The byte layout and the rules enforced are drawn in the sections below.)
package stream
