// Package account is tote's accounts: a username, a password hash and the
// account's cart, kept in the session store beside the sessions, so that
// every session logged in to the account, on any instance, sees and changes
// one cart. It holds the rules of usernames and passwords, the bounded
// hashing of passwords, and the throttling of guesses. It knows nothing of
// HTTP; like the session package it never loses a concurrent update.
package account

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"tote/cart"
	"tote/session"
)

// Errors of the account rules and of logging in (match them with errors.Is).
var (
	ErrInvalidUsername    = errors.New("account: invalid username")
	ErrWeakPassword       = errors.New("account: weak password")
	ErrUsernameTaken      = errors.New("account: username taken")
	ErrInvalidCredentials = errors.New("account: invalid credentials")
	ErrTooManyAttempts    = errors.New("account: too many failed logins")
	ErrOverloaded         = errors.New("account: too many password checks waiting")
	ErrNotFound           = errors.New("account: no such account")
)

// Error is a refusal with a message a person can read; Err is one of the
// package's errors.
type Error struct {
	Err     error
	Message string
	Field   string        // the form field it concerns ("username", "password"), or "" for both
	Retry   time.Duration // with ErrTooManyAttempts and ErrOverloaded: when to try again
}

// Error returns the message for a person.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the package's error.
func (e *Error) Unwrap() error { return e.Err }

// Rules of usernames and passwords.
const (
	MinUsername = 3
	MaxUsername = 30
	MinPassword = 8
	MaxPassword = 128
)

// Account is one account.
type Account struct {
	Username   string
	Hash       []byte // the password's hash (see Hasher)
	Created    time.Time
	Generation uint64    // raised to end every session of the account at once
	Cart       cart.Cart // the cart of every session logged in to the account
	Replays    session.Replays

	version uint64
	raw     []byte // the stored encoding, to tell whether a change changed anything
}

// Key returns the store key of the account username.
func Key(username string) string { return "account:" + username }

// NormalizeUsername returns the username as it is stored, lower-cased, or
// an error if it is not 3 to 30 characters of a-z, 0-9, "_", "." and "-".
func NormalizeUsername(s string) (string, error) {
	name := strings.ToLower(s)
	if n := len(name); n < MinUsername || n > MaxUsername || strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != "" {
		return "", &Error{Err: ErrInvalidUsername, Field: "username", Message: fmt.Sprintf(
			"A username is %d to %d characters: letters a to z, digits, and _ . -", MinUsername, MaxUsername)}
	}
	return name, nil
}

// CheckPassword returns an error if password may not be used by username:
// shorter than 8 or longer than 128 characters, the username itself, or on
// the list of common passwords.
func CheckPassword(username, password string) error {
	weak := func(msg string) error { return &Error{Err: ErrWeakPassword, Field: "password", Message: msg} }
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		return weak("The password is not valid text.")
	case n < MinPassword:
		return weak(fmt.Sprintf("A password has at least %d characters.", MinPassword))
	case n > MaxPassword:
		return weak(fmt.Sprintf("A password has at most %d characters.", MaxPassword))
	case strings.EqualFold(password, username):
		return weak("The password must not be your username.")
	case Common(password):
		return weak("This password is one of the most common ones, which are tried first. Choose another.")
	}
	return nil
}

// Current reports whether a session logged in at generation gen still
// belongs to a: a password change, "log out everywhere" or a new account of
// the same name after a deletion ends it.
func (a *Account) Current(gen uint64) bool { return a.Generation == gen }
