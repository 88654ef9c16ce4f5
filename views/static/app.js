// tote books: the one script, served by tote itself (the Content-Security-
// Policy allows no other). Every page works without it: the cart's forms post
// and answer 303 to /cart with a flash. With it, add, update, remove and
// clear go through the JSON API instead and the page stays where it is. The
// API's cart is the source of truth: after each answer the header (#cart-count,
// #cart-subtotal) and the cart table are redrawn from it. A refusal (say
// insufficient_stock) is shown next to the control that caused it. Each
// outcome is announced in the page's aria-live region, #announce. When the
// API cannot be reached at all, the form is posted as usual.
(function () {
  'use strict';
  if (!window.fetch || !window.JSON) {
    return;
  }
  document.documentElement.classList.add('js');

  // money formats minor units exactly as views.Money does on the server:
  // "$1,234.56"; a currency with no known symbol is written after the amount.
  var symbols = { USD: '$', EUR: '€', GBP: '£', JPY: '¥', CAD: 'CA$', AUD: 'A$' };
  var zeroDecimal = { JPY: true, KRW: true };
  function money(minor, currency) {
    var sign = minor < 0 ? '-' : '';
    minor = Math.abs(minor);
    var known = Object.prototype.hasOwnProperty.call(symbols, currency);
    var units = Math.floor(minor / 100);
    var cents = minor % 100;
    if (zeroDecimal[currency]) {
      units = minor;
      cents = -1;
    }
    var s = sign + (known ? symbols[currency] : '') + String(units).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    if (cents >= 0) {
      s += '.' + (cents < 10 ? '0' : '') + cents;
    }
    return known ? s : s + ' ' + currency;
  }

  function plural(n, one, many) {
    return n === 1 ? '1 ' + one : n + ' ' + many;
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) {
      el.textContent = text;
    }
  }

  function field(form, name) {
    var el = form.elements[name];
    return el ? el.value : '';
  }

  // quantity reads the form's quantity field: a whole number, def when the
  // form has none, or NaN.
  function quantity(form, def) {
    var el = form.elements.quantity;
    if (!el) {
      return def;
    }
    var v = el.value.trim();
    return /^[0-9]{1,6}$/.test(v) ? parseInt(v, 10) : NaN;
  }

  // request maps a cart form to its API call and to the message that tells
  // its success, as the server's flash would.
  function request(form) {
    var id = field(form, 'product_id');
    var title = form.getAttribute('data-title') || id;
    var path = '/api/cart/items/' + encodeURIComponent(id);
    var n;
    switch (form.getAttribute('action')) {
      case '/cart/add':
        n = quantity(form, 1);
        return { method: 'POST', url: '/api/cart/items', body: { product_id: id, quantity: n }, n: n, done: 'Added ' + n + ' × ' + title + '.' };
      case '/cart/update':
        n = quantity(form, NaN);
        return { method: 'PUT', url: path, body: { quantity: n }, n: n, done: n === 0 ? 'Removed ' + title + '.' : title + ': quantity set to ' + n + '.' };
      case '/cart/remove':
        return { method: 'DELETE', url: path, n: 0, done: 'Removed ' + title + '.' };
      case '/cart/clear':
        return { method: 'DELETE', url: '/api/cart', n: 0, done: 'Your cart is now empty.' };
    }
    return null;
  }

  // The live region: emptied first, so that the same message twice is
  // announced twice.
  var timer = 0;
  function announce(text) {
    var live = document.getElementById('announce');
    if (!live) {
      return;
    }
    live.textContent = '';
    clearTimeout(timer);
    timer = setTimeout(function () { live.textContent = text; }, 50);
  }

  // Messages next to a control. Only one is shown at a time; the old flash
  // of the server is dropped at the first change made here.
  function clearMessages() {
    var old = document.querySelectorAll('.note');
    for (var i = 0; i < old.length; i++) {
      old[i].remove();
    }
    var invalid = document.querySelectorAll('[aria-invalid="true"]');
    for (var j = 0; j < invalid.length; j++) {
      invalid[j].removeAttribute('aria-invalid');
      invalid[j].removeAttribute('aria-describedby');
    }
    var flash = document.getElementById('flash');
    if (flash) {
      flash.remove();
    }
  }

  var seq = 0;
  function note(form, text, isError) {
    var p = document.createElement('p');
    p.id = 'note-' + (++seq);
    p.className = 'note ' + (isError ? 'note-error' : 'note-ok');
    p.textContent = text;
    form.insertAdjacentElement('afterend', p);
    if (isError) {
      var control = form.elements.quantity || form.querySelector('button');
      if (control) {
        control.setAttribute('aria-invalid', 'true');
        control.setAttribute('aria-describedby', p.id);
      }
    }
    return p;
  }

  // flash shows a message at the top of the page, where the server puts its
  // own, for a change whose control is gone (a removed line, a cleared cart).
  function flash(text) {
    var main = document.getElementById('main');
    var p = document.createElement('p');
    p.id = 'flash';
    p.className = 'flash';
    p.textContent = text;
    main.insertBefore(p, main.firstChild);
  }

  function focusHeading() {
    var h1 = document.querySelector('main h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus();
    }
  }

  // render redraws what the page shows of the cart from the API's answer.
  function render(cart) {
    var byId = {};
    cart.items.forEach(function (it) { byId[it.product_id] = it; });

    setText('cart-count', String(cart.item_count));
    var unit = document.querySelector('.cart-link .unit');
    if (unit) {
      unit.textContent = cart.item_count === 1 ? 'item' : 'items';
    }
    setText('cart-subtotal', money(cart.subtotal, cart.currency));
    if (typeof cart.visits === 'number' && cart.visits > 0) {
      setText('visit-count', plural(cart.visits, 'time', 'times'));
    }

    var stock = document.getElementById('stock');
    if (stock && stock.hasAttribute('data-stock')) {
      var have = stock.getAttribute('data-stock');
      var line = byId[stock.getAttribute('data-product-id')];
      stock.textContent = (have === '1' ? '1 copy' : have + ' copies') + ' in stock' +
        (line ? ', ' + line.quantity + ' in your cart' : '');
    }

    var table = document.getElementById('cart');
    if (!table) {
      return;
    }
    var focusLost = false;
    var seen = {};
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    rows.forEach(function (tr, i) {
      var id = tr.getAttribute('data-product-id');
      var it = byId[id];
      if (!it) {
        if (tr.contains(document.activeElement)) {
          focusLost = true;
          var next = rows[i + 1] || rows[i - 1];
          if (next && byId[next.getAttribute('data-product-id')]) {
            next.querySelector('input[type=number]').focus();
            focusLost = false;
          }
        }
        tr.remove();
        return;
      }
      seen[id] = true;
      var qty = document.getElementById('qty-' + id);
      if (qty) {
        qty.value = String(it.quantity);
      }
      tr.querySelector('.unit-price').textContent = money(it.unit_price, cart.currency);
      tr.querySelector('.line-total').textContent = money(it.line_total, cart.currency);
    });
    setText('cart-total', money(cart.subtotal, cart.currency));
    setText('cart-items', plural(cart.item_count, 'item', 'items'));

    if (cart.items.length === 0) {
      var clear = document.querySelector('form.clear');
      focusLost = focusLost || table.contains(document.activeElement) || (clear && clear.contains(document.activeElement));
      var empty = document.createElement('p');
      empty.className = 'empty';
      empty.id = 'cart-empty';
      var link = document.createElement('a');
      link.href = '/';
      link.textContent = 'Browse the catalog';
      empty.append('Your cart is empty. ', link, '.');
      table.replaceWith(empty);
      if (clear) {
        clear.remove();
      }
    } else if (cart.items.some(function (it) { return !seen[it.product_id]; })) {
      // Lines added elsewhere (another tab): the page cannot draw them, so
      // it asks the server for the whole cart.
      window.location.reload();
      return;
    }
    if (focusLost) {
      focusHeading();
    }
  }

  function send(form, req) {
    var opts = { method: req.method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (req.body) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(req.body);
    }
    form.setAttribute('aria-busy', 'true');
    clearMessages();
    fetch(req.url, opts).then(function (res) {
      return res.json().then(function (data) {
        return { res: res, data: data };
      }, function () {
        return { res: res, data: null };
      });
    }).then(function (r) {
      form.removeAttribute('aria-busy');
      if (!r.data || (!r.res.ok && !r.data.error)) {
        // Not an answer of the API (a proxy's error page, say): let the
        // server's own page say what happened.
        form.submit();
        return;
      }
      if (!r.res.ok) {
        var msg = r.data.error.message || 'Something went wrong. Please try again.';
        note(form, msg, true);
        announce(msg);
        return;
      }
      var stays = form.getAttribute('action') === '/cart/add' ||
        (form.getAttribute('action') === '/cart/update' && req.n > 0);
      render(r.data);
      if (stays) {
        var ok = note(form, req.done, false);
        if (!document.getElementById('cart')) {
          var link = document.createElement('a');
          link.href = '/cart';
          link.textContent = 'View your cart';
          ok.append(' ', link);
        }
      } else {
        flash(req.done);
      }
      announce(req.done);
    }, function () {
      // The network failed (offline, server gone): post the form as usual.
      form.removeAttribute('aria-busy');
      form.submit();
    });
  }

  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    var req = form instanceof HTMLFormElement ? request(form) : null;
    if (!req || ev.defaultPrevented) {
      return;
    }
    ev.preventDefault();
    if (form.getAttribute('aria-busy') === 'true') {
      return; // a double click: the first request is still on its way
    }
    if (isNaN(req.n)) {
      clearMessages();
      var msg = 'The quantity must be a whole number.';
      note(form, msg, true);
      announce(msg);
      return;
    }
    send(form, req);
  });

  // A page restored from the back-forward cache shows an old cart: redraw it.
  window.addEventListener('pageshow', function (ev) {
    if (!ev.persisted) {
      return;
    }
    fetch('/api/cart', { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (cart) { if (cart) { render(cart); } }, function () {});
  });
}());
