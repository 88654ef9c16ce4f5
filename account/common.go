package account

import (
	_ "embed"
	"strings"
	"sync"
)

// commonPasswords is the 10,000 most common passwords of Xato's list of
// ten million passwords, as SecLists publishes it (github.com/
// danielmiessler/SecLists, Passwords/Common-Credentials/
// 10-million-password-list-top-10000.txt at commit 74d9d325, MIT licence):
// one a line, most common first. Many are shorter than a password may be;
// they are on the list all the same.
//
//go:embed common-passwords.txt
var commonPasswords string

var common = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 10000)
	for _, p := range strings.Split(commonPasswords, "\n") {
		if p = strings.TrimSpace(p); p != "" {
			m[strings.ToLower(p)] = struct{}{}
		}
	}
	return m
})

// Common reports whether password is on the list of common passwords,
// ignoring case.
func Common(password string) bool {
	_, ok := common()[strings.ToLower(password)]
	return ok
}
