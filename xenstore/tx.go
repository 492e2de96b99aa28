package xenstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

// Tx is an open transaction, valid only inside the function passed to
// Client.Transaction. Its operations see the transaction's own writes;
// others see them only after a successful commit. A Tx may be used from
// several goroutines, like its Client.
type Tx struct {
	c  *Client
	id uint32
}

// ID returns the daemon's transaction id.
func (tx *Tx) ID() uint32 { return tx.id }

// Read is Client.Read inside the transaction.
func (tx *Tx) Read(ctx context.Context, path string) ([]byte, error) {
	return tx.c.read(ctx, tx.id, path)
}

// Write is Client.Write inside the transaction.
func (tx *Tx) Write(ctx context.Context, path string, value []byte) error {
	return tx.c.write(ctx, tx.id, path, value)
}

// Mkdir is Client.Mkdir inside the transaction.
func (tx *Tx) Mkdir(ctx context.Context, path string) error {
	return tx.c.pathOp(ctx, OpMkdir, wire.Mkdir, tx.id, path)
}

// Remove is Client.Remove inside the transaction.
func (tx *Tx) Remove(ctx context.Context, path string) error {
	return tx.c.pathOp(ctx, OpRemove, wire.Rm, tx.id, path)
}

// List is Client.List inside the transaction.
func (tx *Tx) List(ctx context.Context, path string) ([]string, error) {
	return tx.c.list(ctx, tx.id, path)
}

// GetPerms is Client.GetPerms inside the transaction.
func (tx *Tx) GetPerms(ctx context.Context, path string) ([]Perm, error) {
	return tx.c.getPerms(ctx, tx.id, path)
}

// SetPerms is Client.SetPerms inside the transaction.
func (tx *Tx) SetPerms(ctx context.Context, path string, perms []Perm) error {
	return tx.c.setPerms(ctx, tx.id, path, perms)
}

// Transaction runs fn in a xenstore transaction and commits it. If fn
// returns an error the transaction is aborted and that error returned. If
// the commit (or an operation inside fn) fails with EAGAIN because another
// connection changed what the transaction touched, fn runs again in a new
// transaction, up to Config.MaxTransactionAttempts times; then the error
// wraps both ErrTooManyRetries and syscall.EAGAIN. fn must therefore be
// safe to repeat.
func (c *Client) Transaction(ctx context.Context, fn func(tx *Tx) error) error {
	attempts := c.cfg.maxAttempts()
	for range attempts {
		tx, err := c.begin(ctx)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			// Abort even when ctx is done, or the daemon keeps the
			// transaction (and its quota slot) until the connection ends.
			_ = tx.end(context.WithoutCancel(ctx), false)
			if errors.Is(err, syscall.EAGAIN) {
				continue
			}
			return err
		}
		err = tx.end(ctx, true)
		if errors.Is(err, syscall.EAGAIN) {
			continue
		}
		return err
	}
	return newOpError(OpTransactionEnd, "", fmt.Errorf("%w (%d attempts): %w", ErrTooManyRetries, attempts, syscall.EAGAIN))
}

func (c *Client) begin(ctx context.Context) (*Tx, error) {
	v, err := c.call(ctx, wire.TransactionStart, 0, nil)
	if err != nil {
		return nil, newOpError(OpTransactionStart, "", err)
	}
	s, _ := wire.CString(v)
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id == 0 {
		return nil, newOpError(OpTransactionStart, "", fmt.Errorf("%w: transaction id %q", ErrProtocol, s))
	}
	return &Tx{c: c, id: uint32(id)}, nil
}

func (tx *Tx) end(ctx context.Context, commit bool) error {
	arg := "F"
	if commit {
		arg = "T"
	}
	return newOpError(OpTransactionEnd, "", tx.c.callOK(ctx, wire.TransactionEnd, tx.id, wire.Strings(arg)))
}
