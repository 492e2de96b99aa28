package xenstore_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

func Example() {
	ctx := context.Background()
	srv := xenstoretest.NewServer(nil) // or xenstore.Dial(ctx, nil) on a Xen host
	defer srv.Close()
	c, err := srv.Client(0)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	if err := c.Write(ctx, "/local/domain/7/name", []byte("guest7")); err != nil {
		panic(err)
	}
	v, _ := c.Read(ctx, "/local/domain/7/name")
	fmt.Printf("%s\n", v)

	_, err = c.Read(ctx, "/local/domain/7/missing")
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// guest7
	// true
}

func ExampleClient_Transaction() {
	ctx := context.Background()
	srv := xenstoretest.NewServer(nil)
	defer srv.Close()
	c, _ := srv.Client(0)
	defer c.Close()

	// Runs again if another connection changes what it read (EAGAIN).
	err := c.Transaction(ctx, func(tx *xenstore.Tx) error {
		if err := tx.Write(ctx, "/vm/1/state", []byte("suspending")); err != nil {
			return err
		}
		return tx.Write(ctx, "/local/domain/1/control/shutdown", []byte("suspend"))
	})
	fmt.Println(err)
	names, _ := c.List(ctx, "/local/domain/1/control")
	fmt.Println(names)
	// Output:
	// <nil>
	// [shutdown]
}

func ExampleClient_Watch() {
	ctx := context.Background()
	srv := xenstoretest.NewServer(nil)
	defer srv.Close()
	c, _ := srv.Client(0)
	defer c.Close()

	w, err := c.Watch(ctx, "@releaseDomain")
	if err != nil {
		panic(err)
	}
	defer w.Close()
	fmt.Println((<-w.Events()).Path) // the initial event

	_ = c.Introduce(ctx, 3, 0x1000, 5)
	_ = c.Release(ctx, 3)
	fmt.Println((<-w.Events()).Path)
	// Output:
	// @releaseDomain
	// @releaseDomain
}
