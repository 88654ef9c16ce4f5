package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"tote/account"
	"tote/session"
	"tote/views"
)

// localPath returns next if it is a path of this site (one leading "/",
// not "//" or "/\", no scheme or host), else "/": where a login may send
// the browser.
func localPath(next string) string {
	u, err := url.Parse(next)
	if err != nil || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		u.Scheme != "" || u.Host != "" || strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}

// signUpPage serves GET /signup; a logged-in visitor goes to /account.
func (s *server) signUpPage(c *fiber.Ctx) error {
	return s.accountForm(c, "pages/signup", "Sign up", views.Form{})
}

// logInPage serves GET /login?next=PATH; a logged-in visitor goes to
// /account.
func (s *server) logInPage(c *fiber.Ctx) error {
	next := localPath(c.Query("next"))
	return s.accountForm(c, "pages/login", "Log in", views.Form{Remember: true, Next: next})
}

// accountForm shows the sign-up or login form to a guest, as a page view.
func (s *server) accountForm(c *fiber.Ctx, page, title string, form views.Form) error {
	v, flash, err := s.view(c)
	if err != nil {
		return err
	}
	if v.acct != nil {
		return c.Redirect("/account", fiber.StatusSeeOther)
	}
	return s.render(c, fiber.StatusOK, page, &v, flash, func(d *views.Data) { d.Title, d.Form = title, form })
}

// accountPage serves GET /account: the username, member since, the
// password form, "log out everywhere" and the deletion form. A guest goes
// to /login?next=/account.
func (s *server) accountPage(c *fiber.Ctx) error {
	v, flash, err := s.view(c)
	if err != nil {
		return err
	}
	if v.acct == nil {
		return c.Redirect("/login?next=/account", fiber.StatusSeeOther)
	}
	return s.showAccount(c, fiber.StatusOK, &v, flash, views.Form{})
}

func (s *server) showAccount(c *fiber.Ctx, status int, v *visitor, flash session.Flash, form views.Form) error {
	return s.render(c, status, "pages/account", v, flash, func(d *views.Data) {
		d.Title, d.Form, d.Member = "Your account", form, v.acct.Created
	})
}

// postedForm reads a form post of the visitor and checks its CSRF token:
// 403 without a valid one.
func (s *server) postedForm(c *fiber.Ctx) (visitor, error) {
	v, err := s.visit(c)
	if err != nil {
		return v, err
	}
	if !validCSRF(&v.sess.Data, csrfToken(c)) {
		return v, errCSRF
	}
	return v, nil
}

// refusedForm shows a form again after err refused it, with the status
// of err (422 invalid input, 401 bad credentials, 409 a taken username,
// 429 throttled), its message next to the field it concerns, or above the
// form when it concerns both, and what was typed except passwords. Other
// errors are the error page's.
func (s *server) refusedForm(c *fiber.Ctx, err error, show func(status int, form views.Form) error, form views.Form) error {
	var ae *account.Error
	if !errors.As(err, &ae) {
		return err
	}
	a := classify(err)
	if a.retry > 0 {
		c.Set(fiber.HeaderRetryAfter, fmt.Sprint(int(a.retry.Seconds())+1))
	}
	if ae.Field != "" {
		form.Errors = map[string]string{ae.Field: ae.Message}
	} else {
		form.Alert = ae.Message
	}
	return show(a.status, form)
}

// signUpForm serves POST /signup: username, password, password2. Success
// logs the new account in (303 to / with "Welcome, alice.").
func (s *server) signUpForm(c *fiber.Ctx) error {
	v, err := s.postedForm(c)
	if err != nil {
		return err
	}
	if v.acct != nil {
		return c.Redirect("/account", fiber.StatusSeeOther)
	}
	user, password := formValue(c, "username"), formValue(c, "password")
	form := views.Form{Username: user}
	show := func(status int, form views.Form) error {
		return s.render(c, status, "pages/signup", &v, session.Flash{}, func(d *views.Data) { d.Title, d.Form = "Sign up", form })
	}
	if password != formValue(c, "password2") {
		form.Errors = map[string]string{"password2": "The two passwords differ."}
		return show(fiber.StatusUnprocessableEntity, form)
	}
	a, err := s.accounts.SignUp(c.UserContext(), user, password)
	if err != nil {
		return s.refusedForm(c, err, show, form)
	}
	s.metrics.signups.Inc()
	s.log.Info("signed up", "user", a.Username)
	if _, _, err := s.logIn(c, a, true, conditions{}, flashOf(fmt.Sprintf("Welcome, %s.", a.Username))); err != nil {
		return err
	}
	return c.Redirect("/", fiber.StatusSeeOther)
}

// flashOf is an answerer for a login from a form: the answer is a flash
// on the next page, with the notices of the merge.
func flashOf(msg string) answerer {
	return func(_ *account.Account, d *session.Data, notices []string) (int, []byte) {
		d.Flash = session.Flash{Message: strings.Join(append([]string{msg}, notices...), " "), Error: len(notices) > 0}
		return 0, nil
	}
}

// logInForm serves POST /login: username, password, remember (a
// checkbox), next. Success goes to next, a local path, or /.
func (s *server) logInForm(c *fiber.Ctx) error {
	v, err := s.postedForm(c)
	if err != nil {
		return err
	}
	if v.acct != nil {
		return c.Redirect("/account", fiber.StatusSeeOther)
	}
	user, remember, next := formValue(c, "username"), formValue(c, "remember") != "", localPath(formValue(c, "next"))
	form := views.Form{Username: user, Remember: remember, Next: next}
	show := func(status int, form views.Form) error {
		return s.render(c, status, "pages/login", &v, session.Flash{}, func(d *views.Data) { d.Title, d.Form = "Log in", form })
	}
	a, err := s.authenticate(c.UserContext(), user, formValue(c, "password"))
	if err != nil {
		return s.refusedForm(c, err, show, form)
	}
	if _, _, err := s.logIn(c, a, remember, conditions{}, flashOf(fmt.Sprintf("Welcome back, %s.", a.Username))); err != nil {
		return err
	}
	return c.Redirect(next, fiber.StatusSeeOther)
}

// logOutForm serves POST /logout (everywhere=1: every session of the
// account): 303 to /, which says "You have logged out."
func (s *server) logOutForm(c *fiber.Ctx) error {
	if _, err := s.postedForm(c); err != nil {
		return err
	}
	if err := s.logOut(c, formValue(c, "everywhere") != ""); err != nil {
		return err
	}
	s.setFlashCookie(c, "logged-out")
	return c.Redirect("/", fiber.StatusSeeOther)
}

// passwordForm serves POST /account/password: current_password,
// new_password, new_password2. Every other session of the account ends.
func (s *server) passwordForm(c *fiber.Ctx) error {
	v, err := s.postedForm(c)
	if err != nil {
		return err
	}
	if v.acct == nil {
		return c.Redirect("/login?next=/account", fiber.StatusSeeOther)
	}
	show := func(status int, form views.Form) error {
		return s.showAccount(c, status, &v, session.Flash{}, form)
	}
	current, next := formValue(c, "current_password"), formValue(c, "new_password")
	if next != formValue(c, "new_password2") {
		return show(fiber.StatusUnprocessableEntity, views.Form{Errors: map[string]string{"new_password2": "The two new passwords differ."}})
	}
	done := flashOf("Your password is changed. Every other session of your account has ended.")
	if err := s.changePassword(c, current, next, done); err != nil {
		return s.refusedForm(c, onField(err, "current_password", "new_password"), show, views.Form{})
	}
	return c.Redirect("/account", fiber.StatusSeeOther)
}

// onField moves an account error to the field of the form it concerns: a
// wrong password to wrong, a weak one to weak.
func onField(err error, wrong, weak string) error {
	var ae *account.Error
	if !errors.As(err, &ae) {
		return err
	}
	moved := *ae
	switch {
	case errors.Is(err, account.ErrWeakPassword):
		moved.Field = weak
	case errors.Is(err, account.ErrInvalidCredentials):
		moved.Field = wrong
	}
	return &moved
}

// deleteForm serves POST /account/delete: password. The account, its cart
// and its sessions are gone.
func (s *server) deleteForm(c *fiber.Ctx) error {
	v, err := s.postedForm(c)
	if err != nil {
		return err
	}
	if v.acct == nil {
		return c.Redirect("/login?next=/account", fiber.StatusSeeOther)
	}
	if err := s.deleteAccount(c, formValue(c, "password")); err != nil {
		return s.refusedForm(c, onField(err, "delete_password", "delete_password"), func(status int, form views.Form) error {
			return s.showAccount(c, status, &v, session.Flash{}, form)
		}, views.Form{})
	}
	s.setFlashCookie(c, "deleted")
	return c.Redirect("/", fiber.StatusSeeOther)
}
