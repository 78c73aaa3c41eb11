'use strict';
/* fieldsync: the administration pages of the supervisors' page, and the area picker of the
   accounts page. Loaded before app.js, which calls this with its helpers (see "Pages in files
   of their own" there). "Nhật ký" (GET /v1/audit with filters, /v1/audit/sensitive-devices),
   "Thiết bị" (GET /v1/admin/devices: phones and page sessions apart), "Cán bộ thu thập"
   (GET /v1/collectors) and areas picked by name from GET /v1/schema. */
(self.fieldsyncPages = self.fieldsyncPages || []).push(k => {
const { S, h, put, t, tn, has, num, btn, td, muted, field, table, fmtTime, flabel, api, get, act, notice, go, areas, area, msgRow } = k;

const strings = {
vi: {
  'nav.collectors': 'Cán bộ thu thập',
  'act.merge': 'Gộp hồ sơ', 'act.unmerge': 'Hủy gộp', 'act.password_reset': 'Đặt lại mật khẩu', 'act.login_throttled': 'Tạm chặn đăng nhập',
  'a.filters': 'Lọc nhật ký', 'a.fUser': 'Người dùng', 'a.fAction': 'Hành động', 'a.fFrom': 'Từ ngày', 'a.fTo': 'Đến ngày', 'a.fRecord': 'Mã hồ sơ',
  'a.fApply': 'Lọc', 'a.fClear': 'Bỏ lọc', 'a.allActions': 'Mọi hành động', 'a.noneHere': 'Không có mục nào trong phần nhật ký đã xem. Bấm “Cũ hơn” để tìm tiếp.',
  'a.recordHidden': 'hồ sơ không xem được',
  'ad.set': 'Đặt {f}', 'ad.clear': 'Xoá {f}', 'ad.into': 'Gộp vào {r}', 'ad.took': 'lấy sang: {f}', 'ad.from': 'Tách khỏi {r}', 'ad.notDup': 'Không trùng với {r}',
  'ad.comment': 'kèm nhận xét', 'ad.role': 'Vai trò: {r}', 'ad.areas': 'địa bàn: {a}', 'ad.sensitive': 'xem vụ việc nhạy cảm: {v}', 'ad.grant': 'được phép cấp quyền đó: {v}',
  'ad.disabled': 'đã khoá: {v}', 'ad.device': 'Thiết bị {d}', 'ad.export': 'Số liệu tính đến {d}, {w}, có số liệu nạn nhân', 'ad.indicator': 'Chỉ tiêu {i}: {n}',
  'd.tabPhones': 'Điện thoại', 'd.tabSessions': 'Phiên trình duyệt', 'd.kinds': 'Loại thiết bị', 'd.fState': 'Trạng thái', 'd.fUser': 'Người dùng',
  'd.allStates': 'Tất cả (trừ phiên hết hạn)', 'd.expired': 'Hết hạn', 'd.enrolled': 'Ngày đăng ký', 'd.lastSync': 'Đồng bộ gần nhất', 'd.sent': 'Thay đổi đã gửi',
  'd.expires': 'Hết hạn lúc', 'd.never': 'Chưa bao giờ', 'd.unknownDate': 'Không rõ', 'd.total': '{n} thiết bị', 'd.total1': '1 thiết bị',
  'd.sessionsHelp': 'Mỗi lần đăng nhập trang này là một phiên trình duyệt; phiên kết thúc khi đăng xuất hoặc hết hạn. Phiên đã hết hạn không hiện ở đây trừ khi chọn “Hết hạn”.',
  'c.title': 'Cán bộ thu thập', 'c.help': 'Các cán bộ thu thập trong địa bàn của bạn: lần đồng bộ gần nhất và số hồ sơ đăng ký mới mỗi tuần (chỉ tính hồ sơ bạn được xem). Người chưa đồng bộ từ 7 ngày trở lên đứng đầu.',
  'c.who': 'Cán bộ', 'c.areas': 'Địa bàn', 'c.last': 'Đồng bộ gần nhất', 'c.week': 'Tuần {d}', 'c.sum': 'Cộng', 'c.silent': 'Im lặng {n} ngày', 'c.never': 'Chưa đồng bộ lần nào',
  'c.none': 'Không có cán bộ thu thập nào trong địa bàn của bạn.', 'c.weeks': 'Số tuần', 'c.nSilent': '{n} người chưa đồng bộ từ 7 ngày trở lên',
  'ap.label': 'Địa bàn', 'ap.search': 'Thêm địa bàn: gõ tên xã, huyện, tỉnh (cũ hoặc mới)', 'ap.ph': 'Ví dụ: Xốp, Ngọc Linh, Đăk Glei…', 'ap.none': 'Chưa có địa bàn nào.',
  'ap.remove': 'Bỏ {n}', 'ap.noMatch': 'Không tìm thấy địa bàn nào.', 'ap.was': 'gồm {o} cũ', 'ap.all': 'Toàn bộ (mọi địa bàn)', 'ap.old': 'trước 01/7/2025', 'ap.unknown': 'Mã không có trong danh mục: {c}',
},
en: {
  'nav.collectors': 'Collectors',
  'act.merge': 'Merged records', 'act.unmerge': 'Undid a merge', 'act.password_reset': 'Set a password', 'act.login_throttled': 'Logins held back',
  'a.filters': 'Filter the log', 'a.fUser': 'User', 'a.fAction': 'Action', 'a.fFrom': 'From', 'a.fTo': 'To', 'a.fRecord': 'Record id',
  'a.fApply': 'Filter', 'a.fClear': 'Clear filters', 'a.allActions': 'All actions', 'a.noneHere': 'No entries in the part of the log read. Press “Older” to search further.',
  'a.recordHidden': 'record not available',
  'ad.set': 'Set {f}', 'ad.clear': 'Cleared {f}', 'ad.into': 'Merged into {r}', 'ad.took': 'took over: {f}', 'ad.from': 'Separated from {r}', 'ad.notDup': 'Not a duplicate of {r}',
  'ad.comment': 'with a comment', 'ad.role': 'Role: {r}', 'ad.areas': 'areas: {a}', 'ad.sensitive': 'sees support cases: {v}', 'ad.grant': 'may grant that: {v}',
  'ad.disabled': 'disabled: {v}', 'ad.device': 'Device {d}', 'ad.export': 'Figures as of {d}, {w}, with victim figures', 'ad.indicator': 'Indicator {i}: {n}',
  'd.tabPhones': 'Phones', 'd.tabSessions': 'Browser sessions', 'd.kinds': 'Kind of device', 'd.fState': 'State', 'd.fUser': 'User',
  'd.allStates': 'All (but expired sessions)', 'd.expired': 'Expired', 'd.enrolled': 'Enrolled', 'd.lastSync': 'Last sync', 'd.sent': 'Changes sent',
  'd.expires': 'Expires', 'd.never': 'Never', 'd.unknownDate': 'Unknown', 'd.total': '{n} devices', 'd.total1': '1 device',
  'd.sessionsHelp': 'Every login to this page is a browser session; it ends at logout or when it expires. Expired sessions are not listed unless you choose “Expired”.',
  'c.title': 'Collectors', 'c.help': 'The collectors of your areas: their last sync and the records they registered each week (only records you may see). Those who have not synced for 7 days or more come first.',
  'c.who': 'Collector', 'c.areas': 'Areas', 'c.last': 'Last sync', 'c.week': 'Week of {d}', 'c.sum': 'Total', 'c.silent': 'Silent for {n} days', 'c.never': 'Never synced',
  'c.none': 'No collectors in your areas.', 'c.weeks': 'Weeks', 'c.nSilent': '{n} have not synced for 7 days or more',
  'ap.label': 'Areas', 'ap.search': 'Add an area: type a commune, district or province (old or new)', 'ap.ph': 'e.g. Xốp, Ngọc Linh, Đăk Glei…', 'ap.none': 'No areas yet.',
  'ap.remove': 'Remove {n}', 'ap.noMatch': 'No area found.', 'ap.was': 'includes former {o}', 'ap.all': 'Everywhere (all areas)', 'ap.old': 'before 1 Jul 2025', 'ap.unknown': 'Unknown area code: {c}',
}};

const DAY = 86400000;
// A person as the page names one: the full name when the account has one.
const person = u => (u && (u.full_name || u.username)) || '—';
// An account named by its username in an answer, as the page names people: the full name from
// the admin's list of accounts, the username beside it.
const named = (users, username) => {
  const u = username && (users || []).find(x => x.username === username);
  return !username ? '—' : u && u.full_name ? u.full_name + ' (' + username + ')' : username;
};
const fold = s => String(s || '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[đĐ]/g, 'd').toLowerCase().replace(/[^a-z0-9*]+/g, ' ').trim();
const levelName = a => (a.level === 'district' && !/^(Thành phố|Thị xã|Huyện)/.test(a.name) ? (S.lang === 'vi' ? 'Huyện ' + a.name : a.name + ' district') : a.name);
const areaLabel = c => (c === '*' ? t('ap.all') : area(c) ? levelName(area(c)) : c);
const within = a => { const p = a && a.parent && area(a.parent); return p ? levelName(p) : ''; };
// Hash parameters of a page, changed by `ch` (empty values dropped).
const link = (base, q, ch) => {
  const p = new URLSearchParams(q);
  for (const x in ch) if (ch[x]) p.set(x, ch[x]); else p.delete(x);
  return base + (p.toString() ? '?' + p : '');
};

// ---- Areas picked by name
// Chips for the chosen areas and a search box over the area list: diacritics ignored ("Xop"
// finds Xốp), and a pre-2025 commune's name finds the commune it became.
function areaPicker(codes, test) {
  let chosen = [...(codes || [])], hits = [], at = -1;
  const id = 'ap' + Math.random().toString(36).slice(2, 8);
  const chips = h('ul', { class: 'chips', test: test + '-chosen', 'aria-live': 'polite' });
  const list = h('ul', { class: 'picks', role: 'listbox', id: id + '-list', test: test + '-options', hidden: true });
  const input = h('input', { type: 'search', test, role: 'combobox', 'aria-autocomplete': 'list', 'aria-expanded': 'false', 'aria-controls': id + '-list', autocomplete: 'off', placeholder: t('ap.ph'),
    oninput: () => search(), onkeydown: ev => {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') { ev.preventDefault(); if (hits.length) { at = (at + (ev.key === 'ArrowDown' ? 1 : hits.length - 1)) % hits.length; mark(); } } else if (ev.key === 'Enter') { if (hits.length) { ev.preventDefault(); pick(hits[Math.max(0, at)].code); } } else if (ev.key === 'Escape') close();
    }, onblur: () => setTimeout(close, 150) });
  const drawChips = () => put(chips, chosen.length ? chosen.map(c => h('li', { class: 'chip', test: 'area-chip', 'data-code': c },
    h('span', null, areaLabel(c)), area(c) && within(area(c)) && muted(' · ' + within(area(c))), !area(c) && c !== '*' && S.A && h('span', { class: 'ferr' }, ' ' + t('ap.unknown', { c })),
    h('button', { type: 'button', class: 'x', 'aria-label': t('ap.remove', { n: areaLabel(c) }), test: 'area-remove', onclick: () => { chosen = chosen.filter(x => x !== c); drawChips(); input.focus(); } }, '×'))) : h('li', { class: 'muted' }, t('ap.none')));
  function close() { list.hidden = true; input.setAttribute('aria-expanded', 'false'); at = -1; }
  function mark() { [...list.children].forEach((li, i) => { li.setAttribute('aria-selected', String(i === at)); if (i === at) li.scrollIntoView({ block: 'nearest' }); }); }
  function pick(code) { if (!chosen.includes(code)) chosen.push(code); input.value = ''; close(); drawChips(); input.focus(); }
  function search() {
    const q = fold(input.value);
    if (!q || !S.A) { hits = []; close(); return; }
    const found = new Map();
    const rank = (a, name) => { const f = fold(name); return f.startsWith(q) ? 0 : f.split(' ').some(w => w.startsWith(q)) ? 1 : f.includes(q) ? 2 : -1; };
    if ('*'.startsWith(q) || fold(t('ap.all')).startsWith(q)) found.set('*', { code: '*', r: 0, label: t('ap.all'), note: '' });
    for (const a of S.A.values()) {
      const r = rank(a, a.name);
      if (r < 0) continue;
      const now = a.valid_to && a.successor && area(a.successor);
      // An old commune leads to the one it became, named with it.
      const to = now || a, key = to.code;
      const note = now ? t('ap.was', { o: a.name }) : a.valid_to ? t('ap.old') : '';
      const prev = found.get(key);
      if (!prev || r + (now ? 0.5 : 0) < prev.r) found.set(key, { code: key, r: r + (now ? 0.5 : 0), label: levelName(to), note, where: within(to), old: !!(to.valid_to) });
    }
    hits = [...found.values()].sort((x, y) => x.r - y.r || x.old - y.old || x.label.localeCompare(y.label, 'vi')).slice(0, 12);
    at = hits.length ? 0 : -1;
    put(list, hits.length ? hits.map((x, i) => h('li', { role: 'option', id: id + '-' + i, test: 'area-option', 'data-code': x.code, 'aria-selected': String(i === at),
      onmousedown: ev => { ev.preventDefault(); pick(x.code); } }, h('strong', null, x.label), x.where && muted(' · ' + x.where), x.note && h('span', { class: 'tag' }, ' ' + x.note), chosen.includes(x.code) && ' ✓'))
      : h('li', { class: 'muted', test: 'area-nomatch' }, t('ap.noMatch')));
    list.hidden = false; input.setAttribute('aria-expanded', 'true');
  }
  areas().then(drawChips, () => {});
  drawChips();
  return {
    value: () => chosen.slice(),
    clear: () => { chosen = []; drawChips(); },
    el: [h('div', { class: 'fld areapick' }, h('span', { class: 'lbl' }, t('ap.label')), chips), h('div', { class: 'fld areapick' }, field(t('ap.search'), input), list)],
  };
}
k.areaPicker = areaPicker;

// ---- Audit log
const ACTIONS = ['login', 'login_failed', 'login_throttled', 'logout', 'review', 'edit', 'merge', 'unmerge', 'dismiss_duplicate', 'view_case', 'view_indicator_cases',
  'export_indicators', 'sync_cases', 'account_create', 'account_change', 'password_reset', 'password_change', 'enrol', 'device_revoke'];
// The log's details (the server writes them in English, stable forms) in the reader's words.
function detailOf(e, recs) {
  const d = e.detail || '', rec = id => recordRef(id, recs), ty = x => (recs[x] && recs[x].record_type) || '';
  const tgt = e.target || '';
  let m;
  switch (e.action) {
    case 'review': return [t('review.' + d.split(',')[0]), /with a comment/.test(d) && ', ' + t('ad.comment')];
    case 'edit': return (m = /^(set|clear) (.+)$/.exec(d)) ? t(m[1] === 'set' ? 'ad.set' : 'ad.clear', { f: flabel(ty(tgt), m[2]) }) : d;
    case 'merge': if ((m = /^into ([0-9a-f-]{36}); took ?(.*)$/.exec(d))) {
      const took = m[2].split(',').map(s => s.trim()).filter(Boolean).map(f => flabel(ty(m[1]), f));
      return [t('ad.into', { r: '' }), rec(m[1]), took.length > 0 && '; ' + t('ad.took', { f: took.join(', ') })];
    } return d;
    case 'unmerge': return (m = /^from ([0-9a-f-]{36})$/.exec(d)) ? [t('ad.from', { r: '' }), rec(m[1])] : d;
    case 'dismiss_duplicate': return /^[0-9a-f-]{36}$/.test(d) ? [t('ad.notDup', { r: '' }), rec(d)] : d;
    case 'account_create': case 'account_change': {
      if (!(m = /^role (\w+), areas (.*), sensitive (true|false), may grant (true|false), disabled (true|false)$/.exec(d))) return d;
      const yn = v => t(v === 'true' ? 'yes' : 'no').toLowerCase();
      return [t('ad.role', { r: t('role.' + m[1]) }), '; ', t('ad.areas', { a: m[2].split(',').filter(Boolean).map(areaLabel).join(', ') || '—' }), '; ',
        t('ad.sensitive', { v: yn(m[3]) }), '; ', t('ad.grant', { v: yn(m[4]) }), '; ', t('ad.disabled', { v: yn(m[5]) })];
    }
    case 'enrol': return (m = /^device ([0-9a-f-]{36})$/.exec(d)) ? h('a', { href: '#/audit?device=' + m[1] }, t('ad.device', { d: m[1].slice(0, 8) + '…' })) : d;
    case 'sync_cases': return (m = /^(\d+) cases$/.exec(d)) ? tn('a.nCases', Number(m[1])) : d;
    case 'view_indicator_cases': return (m = /^(.+) \((\d+) cases\)$/.exec(d)) ? t('ad.indicator', { i: m[1], n: tn('a.nCases', Number(m[2])) }) : d;
    case 'export_indicators': return (m = /^as of ([^,]+), (.+), with victim figures$/.exec(d)) ? t('ad.export', { d: k.fmtDate(m[1]), w: m[2] }) : d;
  }
  return d;
}
// A record the log names: its title, linked, when the server says the admin may see it; else
// the same words for an unknown and a hidden one.
const recordRef = (id, recs) => recs[id] ? h('a', { href: '#/records/' + encodeURIComponent(id), test: 'audit-record', title: id }, k.title({ ...recs[id], title: recs[id].title }))
  : h('span', { class: 'muted', test: 'audit-record-hidden', title: id }, t('a.recordHidden'));
const RECORD_ACTIONS = ['view_case', 'review', 'edit', 'merge', 'unmerge', 'dismiss_duplicate'];

async function pAudit(ctx) {
  const q = ctx.q, sens = !!S.user.sensitive_access, devices = sens && q.get('view') === 'devices';
  ctx.main.append(h('h1', null, t('a.title')), h('p', { class: 'muted lead' }, t(devices ? 'a.devHelp' : 'a.help')));
  if (sens) ctx.main.append(h('nav', { class: 'tabs', 'aria-label': t('a.title'), test: 'audit-tabs' },
    [['log', '#/audit', 'a.log', !devices], ['devices', '#/audit?view=devices', 'a.devices', devices]].map(([x, href, l, on]) =>
      h('a', { href, class: on ? 'on' : null, 'aria-current': on ? 'page' : null, test: 'audit-tab-' + x }, t(l)))));
  return devices ? auditDevices(ctx) : auditLog(ctx);
}
const FILTERS = ['user', 'action', 'from', 'to', 'record', 'device'];
async function auditLog(ctx) {
  const q = ctx.q, v = x => q.get(x) || '', before = v('before'), tbody = h('tbody', null, msgRow(6, t('loading')));
  const keep = () => { const p = new URLSearchParams(); for (const x of FILTERS) if (v(x)) p.set(x, v(x)); return p; };
  const users = h('datalist', { id: 'audit-users' });
  const user = h('input', { test: 'audit-user', list: 'audit-users', value: v('user'), autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false' });
  const action = h('select', { test: 'audit-action' }, h('option', { value: '' }, t('a.allActions')),
    ACTIONS.filter(a => sens(a)).map(a => h('option', { value: a, selected: a === v('action') }, has('act.' + a) ? t('act.' + a) : a)));
  function sens(a) { return S.user.sensitive_access || !['view_case', 'view_indicator_cases', 'export_indicators', 'sync_cases'].includes(a); }
  const from = h('input', { type: 'date', test: 'audit-from', value: v('from') }), to = h('input', { type: 'date', test: 'audit-to', value: v('to') });
  const record = h('input', { test: 'audit-record-id', value: v('record'), autocomplete: 'off', spellcheck: 'false', placeholder: '0190…' });
  const older = btn(t('a.older'), '', 'audit-older');
  older.disabled = true;
  const form = h('form', { class: 'card filterbar audit-filters', test: 'audit-filters', 'aria-label': t('a.filters'), onsubmit: ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [x, el] of [['user', user], ['action', action], ['from', from], ['to', to], ['record', record]]) if (el.value.trim()) p.set(x, el.value.trim());
    if (v('device')) p.set('device', v('device'));
    go('#/audit' + (p.toString() ? '?' + p : ''));
  } }, field(t('a.fUser'), user), field(t('a.fAction'), action), field(t('a.fFrom'), from), field(t('a.fTo'), to), field(t('a.fRecord'), record),
  h('div', { class: 'actions' }, btn(t('a.fApply'), 'primary', 'audit-apply', null, 'submit'), btn(t('a.fClear'), 'ghost', 'audit-clear', () => go('#/audit'))), users);
  ctx.main.append(form,
    v('device') ? h('p', { class: 'note with-act', test: 'audit-device' }, t('a.oneDevice', { d: v('device') }), h('a', { href: '#/audit' }, t('a.allEntries'))) : '',
    table('audit-table', ['a.time', 'a.user', 'a.action', 'a.target', 'a.detail', 'a.peer'], tbody, 'audit'),
    h('div', { class: 'pager' }, h('button', { type: 'button', class: 'btn', test: 'audit-newest', disabled: !before, onclick: () => go(link('#/audit', keep(), {})) }, t('a.newest')), older));
  const accounts = get('/v1/admin/users', ctx).then(us => { put(users, (us || []).map(u => h('option', { value: u.username }, person(u) !== u.username ? person(u) : null))); return us; }, () => null);
  const qs = keep();
  qs.set('limit', '100');
  if (before) qs.set('before', before);
  const d = await get('/v1/audit?' + qs, ctx);
  if (!ctx.alive()) return;
  const es = (d && d.entries) || [], recs = (d && d.records) || {}, people = await accounts;
  if (!ctx.alive()) return;
  const target = e => e.action === 'sync_cases' && e.device_id ? h('a', { href: '#/audit?device=' + encodeURIComponent(e.device_id) }, e.target || e.device_id)
    : RECORD_ACTIONS.includes(e.action) && /^[0-9a-f-]{36}$/i.test(e.target || '') ? recordRef(e.target, recs) : e.target || '—';
  put(tbody, es.length ? es.map(e => h('tr', { test: 'audit-row', 'data-seq': e.seq, 'data-action': e.action }, h('td', { class: 'nowrap' }, fmtTime(e.at)), td(named(people, e.username)),
    h('td', { class: e.action === 'login_failed' ? 'bad' : null }, has('act.' + e.action) ? t('act.' + e.action) : e.action,
      e.sensitive && ' ', e.sensitive && h('span', { class: 'badge warn', test: 'audit-sensitive' }, t('a.sensitive'))),
    td(target(e)), h('td', { test: 'audit-detail' }, detailOf(e, recs)), h('td', { class: 'mono nowrap' }, e.peer || ''))) : msgRow(6, t(d && d.next_before ? 'a.noneHere' : 'a.none')));
  if (d && d.next_before) { older.disabled = false; older.onclick = () => go(link('#/audit', keep(), { before: String(d.next_before) })); }
}
// The devices support cases reached, most recent delivery first; each leads to its entries.
async function auditDevices(ctx) {
  const tbody = h('tbody', null, msgRow(7, t('loading')));
  ctx.main.append(table('sensitive-devices', ['d.user', 'd.name', 'd.kind', 'd.state', 'a.deliveries', 'a.lastDelivery', 'a.casesWritten'], tbody, 'audit'));
  const d = await get('/v1/audit/sensitive-devices', ctx);
  if (!ctx.alive()) return;
  const list = (d && d.devices) || [];
  put(tbody, list.length ? list.map(x => h('tr', { test: 'sensitive-device', 'data-id': x.device_id, class: x.revoked ? 'dim' : null },
    td(h('strong', null, x.username)), td(h('a', { href: '#/audit?device=' + encodeURIComponent(x.device_id), test: 'device-entries' }, x.device_name || x.device_id)),
    td(t(x.kind === 'browser' ? 'd.browser' : 'd.phone')),
    td(h('span', { class: 'badge ' + (x.revoked ? '' : 'good') }, t(x.revoked ? 'd.revoked' : 'd.active'))),
    td(num(x.deliveries)), h('td', { class: 'nowrap' }, x.last_delivery_at ? fmtTime(x.last_delivery_at) : '—'), td(num(x.cases_written)))) : msgRow(7, t('a.noDevices')));
}

// ---- Devices: phones and browser sessions apart
async function pDevices(ctx) {
  const q = ctx.q, v = x => q.get(x) || '', kind = v('kind') === 'browser' ? 'browser' : 'phone';
  const base = kind === 'browser' ? { kind } : {};
  const states = kind === 'browser' ? ['active', 'revoked', 'expired'] : ['active', 'revoked'];
  const state = states.includes(v('state')) ? v('state') : kind === 'browser' && !q.has('state') ? 'active' : '';
  const cols = ['d.user', 'd.name', 'd.enrolled', kind === 'browser' ? 'd.expires' : 'd.lastSync', kind === 'browser' ? null : 'd.sent', 'd.state', ''].filter(x => x !== null);
  const tbody = h('tbody', null, msgRow(cols.length, t('loading'))), total = h('span', { class: 'total', test: 'devices-total', 'aria-live': 'polite' });
  const stSel = h('select', { test: 'devices-state', onchange: () => go(link('#/devices', q, { ...base, state: stSel.value || (kind === 'browser' ? 'all' : '') })) },
    h('option', { value: '' }, t('d.allStates')), states.map(s => h('option', { value: s, selected: s === state }, t(s === 'expired' ? 'd.expired' : 'd.' + s))));
  const users = h('datalist', { id: 'device-users' });
  const user = h('input', { test: 'devices-user', list: 'device-users', value: v('user'), autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false',
    onchange: () => go(link('#/devices', q, { ...base, user: user.value.trim() })) });
  ctx.main.append(h('div', { class: 'res-head' }, h('h1', null, t('nav.devices')), total), h('p', { class: 'muted lead' }, t(kind === 'browser' ? 'd.sessionsHelp' : 'd.help')),
    h('nav', { class: 'tabs', 'aria-label': t('d.kinds'), test: 'device-tabs' }, [['phone', 'd.tabPhones'], ['browser', 'd.tabSessions']].map(([x, l]) =>
      h('a', { href: x === 'phone' ? '#/devices' : '#/devices?kind=browser', class: x === kind ? 'on' : null, 'aria-current': x === kind ? 'page' : null, test: 'device-tab-' + x }, t(l)))),
    h('div', { class: 'card filterbar', test: 'device-filters' }, field(t('d.fState'), stSel), field(t('d.fUser'), user), users),
    table('devices-table', cols, tbody));
  const accounts = get('/v1/admin/users', ctx).then(us => { put(users, (us || []).map(u => h('option', { value: u.username }))); return us; }, () => null);
  const qs = new URLSearchParams({ kind });
  if (state) qs.set('state', state);
  if (v('user')) qs.set('user', v('user'));
  const list = await get('/v1/admin/devices?' + qs, ctx), people = await accounts;
  if (!ctx.alive()) return;
  const when = (iso, none) => (iso ? fmtTime(iso) : muted(t(none)));
  const row = d => {
    const acts = h('td', { class: 'acts' });
    // Revoking asks in the row itself: no pop-up dialog.
    const idle = () => put(acts, d.state === 'active' && btn(t('d.revoke'), 'small danger-o', 'revoke', () => put(acts, h('span', { class: 'ask' }, t('d.ask')),
      btn(t('d.confirm'), 'small danger', 'revoke-confirm', ev => act(ev.currentTarget, async () => {
        await api('POST', '/v1/admin/devices/' + encodeURIComponent(d.id) + '/revoke', {});
        d.revoked = true; d.state = 'revoked'; tr.replaceWith(row(d)); notice(t('d.done', { n: d.name || d.id }));
      })), btn(t('cancel'), 'small ghost', 'revoke-cancel', idle))));
    idle();
    const badge = h('span', { class: 'badge ' + (d.state === 'active' ? 'good' : ''), test: 'device-state', 'data-state': d.state }, t(d.state === 'expired' ? 'd.expired' : 'd.' + d.state));
    const tr = h('tr', { test: 'device-row', 'data-id': d.id, 'data-kind': d.kind, class: d.state !== 'active' ? 'dim' : null },
      td(h('strong', null, named(people, d.username))), td(d.name || '—'), h('td', { class: 'nowrap' }, when(d.enrolled_at, 'd.unknownDate')),
      h('td', { class: 'nowrap', test: kind === 'browser' ? 'device-expires' : 'device-last-sync' }, kind === 'browser' ? when(d.expires_at, 'd.unknownDate') : when(d.last_sync_at, 'd.never')),
      kind !== 'browser' && h('td', { class: 'num', test: 'device-sent' }, num(d.changes_sent)), td(badge), acts);
    return tr;
  };
  total.textContent = tn('d.total', list.length);
  put(tbody, list.length ? list.map(row) : msgRow(cols.length, t('d.none')));
}

// ---- Collectors: who has gone silent, and how much each registered
async function pCollectors(ctx) {
  const q = ctx.q, weeks = Math.min(12, Math.max(1, parseInt(q.get('weeks'), 10) || 6));
  const wrap = h('div', null, h('p', { class: 'loading muted' }, t('loading'))), total = h('span', { class: 'total', test: 'collectors-silent', 'aria-live': 'polite' });
  const wsel = h('select', { test: 'collectors-weeks', onchange: () => go(link('#/collectors', q, { weeks: wsel.value === '6' ? '' : wsel.value })) },
    [4, 6, 8, 12].map(n => h('option', { value: String(n), selected: n === weeks }, num(n))));
  ctx.main.append(h('div', { class: 'res-head' }, h('h1', null, t('c.title')), total), h('p', { class: 'muted lead' }, t('c.help')),
    h('div', { class: 'card filterbar' }, field(t('c.weeks'), wsel)), wrap);
  const [d] = await Promise.all([get('/v1/collectors?weeks=' + weeks, ctx), areas().catch(() => null)]);
  if (!ctx.alive()) return;
  const ws = d.weeks || [], cs = d.collectors || [], now = Date.now();
  const silentN = cs.filter(c => c.silent).length;
  total.textContent = silentN ? t('c.nSilent', { n: num(silentN) }) : '';
  const last = c => {
    if (!c.last_sync_at) return h('span', { class: 'badge bad', test: 'collector-silent' }, t('c.never'));
    const days = Math.floor((now - new Date(c.last_sync_at)) / DAY);
    return [fmtTime(c.last_sync_at), c.silent && ' ', c.silent && h('span', { class: 'badge bad', test: 'collector-silent' }, t('c.silent', { n: num(days) }))];
  };
  const heads = ['c.who', 'c.areas', 'c.last', ...ws.map(w => t('c.week', { d: k.fmtDate(w).slice(0, 5) })), 'c.sum'];
  put(wrap, cs.length ? h('div', { class: 'tablewrap' }, h('table', { class: 'grid collectors', test: 'collectors-table' },
    h('thead', null, h('tr', null, heads.map((x, i) => h('th', { scope: 'col', class: i > 2 ? 'num' : null }, has(x) ? t(x) : x)))),
    h('tbody', null, cs.map(c => h('tr', { test: 'collector-row', 'data-username': c.username, class: c.silent ? 'silent' : null },
      td(h('strong', null, person(c))), td((c.areas || []).map(areaLabel).join(', ') || '—'), h('td', { class: 'nowrap', test: 'collector-last' }, last(c)),
      (c.registered || []).map(n => h('td', { class: 'num', test: 'collector-week' }, n ? num(n) : muted('0'))),
      h('td', { class: 'num', test: 'collector-sum' }, h('strong', null, num((c.registered || []).reduce((a, b) => a + b, 0)))))))))
    : h('p', { class: 'empty', test: 'collectors-none' }, t('c.none')));
}

return { strings, after: 'users', routes: [
  { re: /^devices$/, page: pDevices, nav: 'nav.devices', key: 'devices', roles: ['admin'] },
  { re: /^audit$/, page: pAudit, nav: 'nav.audit', key: 'audit', roles: ['admin'] },
  { re: /^collectors$/, page: pCollectors, nav: 'nav.collectors', key: 'collectors', roles: ['supervisor', 'admin'] },
] };
});
