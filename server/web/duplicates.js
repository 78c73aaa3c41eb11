'use strict';
/* fieldsync: the duplicates queue of the supervisors' page ("Trùng lặp"). Loaded before app.js,
   which calls this with its helpers (see "Pages in files of their own" there). Supervisors only,
   like the API: GET /v1/duplicates, POST /v1/duplicates/merge and /dismiss, and
   POST /v1/records/{id}/unmerge (server/src/http/openapi.json, tag "duplicates"). */
(self.fieldsyncPages = self.fieldsyncPages || []).push(k => {
const { h, put, t, tn, has, btn, muted, field, check, fmt, fmtTime, title, fillRefs, badge, FIELDS, fkind, flabel } = k;
const { api, get, act, notice, go, areas, communeEl, fillCommunes, communeOptions, setCount, area, S } = k;

const strings = {
vi: {
  'nav.duplicates': 'Trùng lặp', 'nav.duplicates.count': '{n} cặp cần xem xét',
  'dup.title': 'Hồ sơ trùng lặp', 'dup.total': '{n} cặp', 'dup.total1': '1 cặp',
  'dup.help': 'Máy chủ tự tìm những cặp hồ sơ có thể là cùng một người hoặc một hộ được đăng ký hai lần. Hãy so sánh hai hồ sơ, chọn hồ sơ giữ lại rồi gộp, hoặc đánh dấu là không trùng.',
  'dup.state': 'Trạng thái', 'ds.open': 'Cần xem xét', 'ds.dismissed': 'Không trùng', 'ds.merged': 'Đã gộp',
  'reason.national_id': 'Trùng số CCCD', 'reason.name_birth_commune': 'Trùng tên, năm sinh (±1), xã', 'reason.head_village': 'Trùng chủ hộ và thôn',
  'dup.found': 'Phát hiện lúc {t}', 'dup.field': 'Thông tin', 'dup.updated': 'Cập nhật {t}', 'dup.differs': 'khác nhau',
  'dup.keep': 'Giữ hồ sơ này', 'dup.toKeep': 'Giữ lại', 'dup.goes': 'Sẽ gộp vào hồ sơ kia', 'dup.kept': 'Đã giữ lại', 'dup.wasMerged': 'Đã gộp vào hồ sơ kia',
  'dup.take': 'Lấy sang hồ sơ giữ lại', 'dup.keepA': 'Giữ hồ sơ “{n}”', 'dup.takeA': 'Lấy {f} sang hồ sơ giữ lại',
  'dup.plan': 'Giữ “{a}”; “{b}” sẽ được gộp vào (không bị xoá, có thể hoàn tác).', 'dup.planTake': 'Lấy sang: {f}.',
  'dup.useThis': 'Dùng giá trị này', 'dup.useA': 'Dùng {f} của “{n}”', 'dup.planReplace': 'Thay bằng giá trị của “{b}”: {f}.',
  'dup.choiceHelp': 'Ở mỗi dòng khác nhau, chọn giá trị giữ lại; mặc định giữ giá trị của hồ sơ giữ lại.',
  'dup.merge': 'Gộp hồ sơ', 'dup.dismiss': 'Không trùng',
  'dup.askMerge': 'Gộp hồ sơ “{b}” ({bd}) vào hồ sơ “{a}” ({ad})?', 'dup.confirmMerge': 'Xác nhận gộp',
  'dup.score': 'Độ giống {n}/100', 'dup.scoreHelp': 'Tính từ lý do trùng và những điểm khác nhau (khác số CCCD, khác dân tộc thì điểm thấp).',
  'dup.born': 'sinh năm {y}', 'dup.cccd': 'CCCD {n}', 'dup.noCccd': 'không có CCCD', 'dup.commune': 'xã {n}',
  'dup.box': 'Có thể trùng với', 'dup.boxHelp': 'Hồ sơ này nằm trong {n} cặp hồ sơ có thể trùng đang chờ xem xét.', 'dup.boxAll': 'Xem trong danh sách trùng lặp', 'dup.forRecord': 'Chỉ các cặp của một hồ sơ.',
  'dup.askDismiss': 'Hai hồ sơ này không trùng? Cặp này sẽ không hiện lại trong danh sách cần xem xét.', 'dup.confirmDismiss': 'Xác nhận không trùng',
  'dup.merged': 'Đã gộp “{b}” vào “{a}”.', 'dup.dismissed': 'Đã đánh dấu hai hồ sơ là không trùng.',
  'dup.mergedBy': 'Gộp bởi {u} lúc {t}.', 'dup.dismissedBy': 'Đánh dấu không trùng bởi {u} lúc {t}. Nếu nhầm, vẫn có thể gộp.',
  'dup.inactive': 'Một trong hai hồ sơ đã bị xoá hoặc đã được gộp vào hồ sơ khác.',
  'dup.empty.open': 'Không có cặp hồ sơ nào cần xem xét.', 'dup.empty.dismissed': 'Chưa có cặp nào được đánh dấu không trùng.',
  'dup.empty.merged': 'Chưa gộp cặp hồ sơ nào.', 'dup.emptyHint': 'Máy chủ tìm hồ sơ trùng mỗi khi nhận dữ liệu từ điện thoại.',
},
en: {
  'nav.duplicates': 'Duplicates', 'nav.duplicates.count': '{n} pairs to review',
  'dup.title': 'Duplicate records', 'dup.total': '{n} pairs', 'dup.total1': '1 pair',
  'dup.help': 'The server finds pairs of records that may be one person or household registered twice. Compare the two, choose the record to keep and merge, or mark them as not duplicates.',
  'dup.state': 'State', 'ds.open': 'To review', 'ds.dismissed': 'Not duplicates', 'ds.merged': 'Merged',
  'reason.national_id': 'Same ID card number', 'reason.name_birth_commune': 'Same name, birth year (±1), commune', 'reason.head_village': 'Same head of household and village',
  'dup.found': 'Found {t}', 'dup.field': 'Field', 'dup.updated': 'Updated {t}', 'dup.differs': 'differs',
  'dup.keep': 'Keep this record', 'dup.toKeep': 'To keep', 'dup.goes': 'To merge into the other', 'dup.kept': 'Kept', 'dup.wasMerged': 'Merged into the other',
  'dup.take': 'Take over to the kept record', 'dup.keepA': 'Keep “{n}”', 'dup.takeA': 'Take {f} over to the kept record',
  'dup.plan': 'Keep “{a}”; “{b}” is merged into it (not deleted; can be undone).', 'dup.planTake': 'Taking over: {f}.',
  'dup.useThis': 'Use this value', 'dup.useA': 'Use {f} of “{n}”', 'dup.planReplace': 'Replaced by the values of “{b}”: {f}.',
  'dup.choiceHelp': 'Where the two differ, choose the value to keep; the kept record\'s value stays unless you choose otherwise.',
  'dup.merge': 'Merge records', 'dup.dismiss': 'Not duplicates',
  'dup.askMerge': 'Merge record “{b}” ({bd}) into record “{a}” ({ad})?', 'dup.confirmMerge': 'Yes, merge',
  'dup.score': 'Alike {n}/100', 'dup.scoreHelp': 'From the reasons and the differences (different ID card numbers or ethnic groups score low).',
  'dup.born': 'born {y}', 'dup.cccd': 'ID card {n}', 'dup.noCccd': 'no ID card', 'dup.commune': '{n} commune',
  'dup.box': 'May be a duplicate of', 'dup.boxHelp': 'This record is in {n} candidate pairs waiting for review.', 'dup.boxAll': 'See them in the duplicates list', 'dup.forRecord': 'Only the pairs of one record.',
  'dup.askDismiss': 'These two are not duplicates? The pair will not come back to the review list.', 'dup.confirmDismiss': 'Yes, not duplicates',
  'dup.merged': 'Merged “{b}” into “{a}”.', 'dup.dismissed': 'Marked the two records as not duplicates.',
  'dup.mergedBy': 'Merged by {u} at {t}.', 'dup.dismissedBy': 'Marked not duplicates by {u} at {t}. If that was a mistake, they can still be merged.',
  'dup.inactive': 'One of the two records was deleted or merged into another record.',
  'dup.empty.open': 'No pairs to review.', 'dup.empty.dismissed': 'No pairs marked as not duplicates.',
  'dup.empty.merged': 'No pairs merged yet.', 'dup.emptyHint': 'The server looks for duplicates whenever phones send data.',
}};

const STATES = ['open', 'dismissed', 'merged'], TYPES = ['person', 'household'], PAGE = 10;
// A side's value of a field, null when it has none; whether it has one (as the server decides what
// the kept record lacks).
const val = (s, n) => { const v = (s.fields || {})[n]; return v == null || v === '' || (Array.isArray(v) && !v.length) ? null : v; };
// What tells two records apart in a sentence: birth year, CCCD, village and commune.
function describe(s) {
  const f = s.fields || {}, a = area(s.commune), out = [];
  if (s.record_type === 'person') {
    if (f.birth) out.push(t('dup.born', { y: String(f.birth).slice(0, 4) }));
    out.push(f.national_id ? t('dup.cccd', { n: f.national_id }) : t('dup.noCccd'));
  }
  if (s.village) out.push(s.village);
  const commune = s.commune_name || (a && a.name);
  if (commune) out.push(t('dup.commune', { n: commune }));
  return out.join(', ');
}
const scoreBadge = p => p.score != null && h('span', { class: 'badge score ' + (p.score >= 70 ? 'good' : p.score >= 40 ? 'warn' : 'bad'), test: 'pair-score', 'data-score': p.score, title: t('dup.scoreHelp') }, t('dup.score', { n: p.score }));
const holds = (s, n) => Object.prototype.hasOwnProperty.call(s.fields || {}, n) && s.fields[n] != null;

// Filters and page live in the hash (#/duplicates?state=merged&type=person&page=2).
function pDuplicates(ctx) {
  let params = ctx.q, ac = null;
  const v = x => params.get(x) || '', st = () => (STATES.includes(v('state')) ? v('state') : 'open');
  const pg = () => Math.max(1, parseInt(v('page'), 10) || 1);
  const link = ch => {
    const p = new URLSearchParams(params);
    if (!('page' in ch)) p.delete('page');
    for (const x in ch) if (ch[x]) p.set(x, ch[x]); else p.delete(x);
    return '#/duplicates' + (p.toString() ? '?' + p : '');
  };
  const type = h('select', { test: 'dup-filter-type', onchange: () => go(link({ type: type.value })) });
  const commune = h('select', { test: 'dup-filter-commune', onchange: () => go(link({ commune: commune.value })) });
  const tabs = h('nav', { class: 'tabs', 'aria-label': t('dup.state'), test: 'dup-states' });
  const total = h('span', { class: 'total', test: 'dup-total', 'aria-live': 'polite' });
  const list = h('div', { class: 'pairs', test: 'pairs' }), empty = h('div', { class: 'empty', test: 'dup-empty', hidden: true });
  const prev = btn(t('prev'), '', 'dup-prev', () => go(link({ page: String(pg() - 1) })));
  const next = btn(t('next'), '', 'dup-next', () => go(link({ page: String(pg() + 1) })));
  const info = h('span', { class: 'pinfo', test: 'dup-page-info' }), pager = h('div', { class: 'pager' }, prev, info, next);
  ctx.main.append(h('div', { class: 'res-head' }, h('h1', null, t('dup.title')), total), h('p', { class: 'muted lead' }, t('dup.help')),
    v('record') && h('p', { class: 'note with-act', test: 'dup-one-record' }, t('dup.forRecord'), h('a', { href: '#/duplicates' }, t('a.allEntries'))),
    h('div', { class: 'dup-bar' }, tabs, h('div', { class: 'dup-filters' }, field(t('list.type'), type), field(t('list.commune'), commune))),
    list, empty, pager);
  // After a change: the list again, and the menu's count (which the open list sets itself).
  const reload = () => update(params).then(() => {
    if (ctx.alive() && (st() !== 'open' || v('type') || v('commune'))) countOpen().then(n => setCount('duplicates', n), () => {});
  });

  // One pair: the two records side by side, the choice of the one to keep and of the fields it
  // takes over, and merge / not a duplicate (or, once merged, undo).
  function card(p) {
    const ty = p.a.record_type, sides = [p.a, p.b], diff = new Set(p.differences || []);
    const merged = p.state === 'merged', choose = !merged && sides.every(s => s.status === 'active');
    // Kept by default: the first of the pair (the older id); once merged, the side not merged.
    let keep = merged && p.a.status === 'merged' ? 1 : 0;
    const names = (FIELDS[ty] || []).map(x => x[0]);
    for (const s of sides) for (const n of Object.keys(s.fields || {})) if (!names.includes(n) && n[0] !== '$') names.push(n);
    const shown = names.filter(n => sides.some(s => val(s, n) != null));
    const boxes = {}, box = n => boxes[n] || (boxes[n] = h('input', { type: 'checkbox', checked: true, test: 'take-' + n, 'aria-label': t('dup.takeA', { f: flabel(ty, n) }), onchange: plan }));
    const takeable = n => !holds(sides[keep], n) && holds(sides[1 - keep], n);
    // Fields both hold with different values: the supervisor picks one; the kept one unless
    // she picks the other (`replace`), which the merge then writes over the kept record's.
    let replace = new Set();
    const contested = n => diff.has(n) && holds(sides[keep], n) && holds(sides[1 - keep], n);
    const filling = () => shown.filter(n => takeable(n) && boxes[n] && boxes[n].checked);
    const replacing = () => shown.filter(n => contested(n) && replace.has(n));
    const taking = () => [...filling(), ...replacing()];
    const tags = sides.map(() => h('span', { class: 'role', test: 'side-role' }));
    const group = 'keep-' + p.a.id + '-' + p.b.id;
    const radios = sides.map((s, i) => h('input', { type: 'radio', name: group, value: s.id, checked: i === keep, test: 'keep', 'data-id': s.id, 'aria-label': t('dup.keepA', { n: title(s) }),
      onchange: () => { keep = i; replace = new Set(); draw(); idle(); } }));
    const heads = sides.map((s, i) => h('th', { scope: 'col', 'data-id': s.id, test: 'pair-side' },
      (choose || merged) && tags[i],
      h('a', { href: '#/records/' + encodeURIComponent(s.id), class: 'rtitle', test: 'pair-title' }, title(s)),
      h('div', { class: 'smeta' }, communeEl(s.commune, s.commune_name), badge(s.review || 'pending'),
        s.status !== 'active' && h('span', { class: 'badge', test: 'side-status' }, t('status.' + s.status))),
      h('div', { class: 'smeta muted' }, t('dup.updated', { t: fmtTime(s.updated_at) })),
      choose && check(radios[i], t('dup.keep'))));
    const tbody = h('tbody'), planEl = h('p', { class: 'plan', test: 'merge-plan', 'aria-live': 'polite' }), acts = h('div', { class: 'actions' });
    function draw() {
      heads.forEach((th, i) => { th.className = i === keep ? 'kept' : 'dup'; tags[i].textContent = t(merged ? (i === keep ? 'dup.kept' : 'dup.wasMerged') : i === keep ? 'dup.toKeep' : 'dup.goes'); });
      put(tbody, shown.map(n => {
        const kind = fkind(ty, n), differs = diff.has(n);
        const cell = (s, i) => {
          const only = val(s, n) != null && val(sides[1 - i], n) == null;
          const picked = (i === keep) !== replace.has(n);
          const pick = choose && contested(n) && h('input', { type: 'radio', name: group + '-' + n, value: s.id, checked: picked, test: 'choose-' + n, 'data-id': s.id,
            'aria-label': t('dup.useA', { f: flabel(ty, n), n: title(s) }), onchange: () => { if (i === keep) replace.delete(n); else replace.add(n); draw(); } });
          return h('td', { class: (i === keep ? 'kept' : 'dup') + (only ? ' only' : '') + (pick ? (picked ? ' chosen' : ' unchosen') : '') }, h('div', { class: 'v' }, fmt(kind, val(s, n))),
            choose && i !== keep && takeable(n) && check(box(n), t('dup.take')), pick && check(pick, t('dup.useThis')));
        };
        return h('tr', { class: differs ? 'diff' : null, test: 'pair-row', 'data-field': n, 'data-differs': differs ? 'true' : null },
          h('th', { scope: 'row' }, flabel(ty, n), differs && h('span', { class: 'dtag' }, t('dup.differs'))), sides.map(cell));
      }));
      plan();
    }
    function plan() {
      if (!choose) return;
      const f = filling(), r = replacing(), names = l => l.map(n => flabel(ty, n)).join(', ');
      put(planEl, t('dup.plan', { a: title(sides[keep]), b: title(sides[1 - keep]) }), f.length > 0 && ' ' + t('dup.planTake', { f: names(f) }),
        r.length > 0 && ' ' + t('dup.planReplace', { b: title(sides[1 - keep]), f: names(r) }));
    }
    // Asks in the card itself before merging or dismissing (no pop-up dialog).
    function ask(question, label, test, cls, run) {
      const yes = btn(label, cls, test + '-confirm', ev => act(ev.currentTarget, () => run().catch(e => { if (e.status === 409) reload(); throw e; })));
      put(acts, h('span', { class: 'ask', test: 'ask' }, question), yes, btn(t('cancel'), 'ghost', test + '-cancel', () => { idle(); acts.querySelector(`[data-test="${test}"]`).focus(); }));
      yes.focus();
    }
    function idle() {
      put(acts,
        choose && btn(t('dup.merge'), 'primary', 'merge', () => {
          const [a, b] = [title(sides[keep]), title(sides[1 - keep])];
          ask(t('dup.askMerge', { a, b, ad: describe(sides[keep]), bd: describe(sides[1 - keep]) }), t('dup.confirmMerge'), 'merge', 'primary', async () => {
            await api('POST', '/v1/duplicates/merge', { keep: sides[keep].id, duplicate: sides[1 - keep].id, take: taking() });
            notice(t('dup.merged', { a, b })); reload();
          });
        }),
        choose && p.state === 'open' && btn(t('dup.dismiss'), '', 'dismiss', () => ask(t('dup.askDismiss'), t('dup.confirmDismiss'), 'dismiss', 'danger', async () => {
          await api('POST', '/v1/duplicates/dismiss', { a: p.a.id, b: p.b.id });
          notice(t('dup.dismissed')); reload();
        })));
    }
    // Who decided, and when; a merge can be undone from here.
    const dup = merged && sides.find(s => s.status === 'merged');
    const decided = p.state !== 'open' && h('div', { class: 'pair-decided' },
      h('p', { test: 'decided' }, t(merged ? 'dup.mergedBy' : 'dup.dismissedBy', { u: p.decided_by || '—', t: fmtTime(p.decided_at) })),
      dup && btn(t('rec.unmerge'), 'small', 'unmerge', ev => act(ev.currentTarget, async () => {
        await api('POST', '/v1/records/' + encodeURIComponent(dup.id) + '/unmerge');
        notice(t('rec.unmerged')); reload();
      })));
    draw(); idle();
    return h('article', { class: 'card pair' + (merged ? ' done' : ''), test: 'pair', 'data-state': p.state, 'data-a': p.a.id, 'data-b': p.b.id },
      h('header', { class: 'pair-head' }, h('span', { class: 'kind' }, t('type.' + ty)), scoreBadge(p),
        (p.reasons || []).map(r => h('span', { class: 'badge reason', test: 'reason', 'data-reason': r }, has('reason.' + r) ? t('reason.' + r) : r)),
        h('span', { class: 'found muted' }, t('dup.found', { t: fmtTime(p.found_at) }))),
      decided,
      h('div', { class: 'tablewrap' }, h('table', { class: 'cmp', test: 'pair-table' },
        h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'fcol' }, t('dup.field')), heads)), tbody)),
      !choose && !merged && h('div', { class: 'pair-foot' }, h('p', { class: 'note warn small' }, t('dup.inactive'))),
      choose && h('div', { class: 'pair-foot' }, shown.some(contested) && h('p', { class: 'muted small' }, t('dup.choiceHelp')), planEl, acts));
  }

  async function update(p) {
    params = p;
    put(tabs, STATES.map(s => h('a', { href: link({ state: s === 'open' ? '' : s }), class: s === st() ? 'on' : null, 'aria-current': s === st() ? 'page' : null, test: 'dup-state-' + s }, t('ds.' + s))));
    put(type, h('option', { value: '' }, t('all')), TYPES.map(x => h('option', { value: x }, t('type.' + x))));
    type.value = v('type');
    communeOptions(commune, v('commune'));
    const qs = new URLSearchParams({ state: st(), limit: String(PAGE), offset: String((pg() - 1) * PAGE) });
    for (const x of ['type', 'commune', 'record']) if (v(x)) qs.set(x, v(x));
    if (ac) ac.abort();
    const mine = ac = new AbortController();
    list.classList.add('busy'); list.setAttribute('aria-busy', 'true');
    total.textContent = t('loading');
    let d;
    try { d = await get('/v1/duplicates?' + qs, { reuse: ctx.reuse, signal: mine.signal }); } catch (e) { d = e; }
    if (mine !== ac || !ctx.alive()) return;
    ctx.reuse = false;
    list.classList.remove('busy'); list.removeAttribute('aria-busy');
    if (d instanceof Error) { total.textContent = ''; put(list); return k.showError(d); }
    const pairs = d.pairs || [], n = d.total || 0, pages = Math.max(1, Math.ceil(n / PAGE));
    // Past the last page (its last pair was just merged): the last page instead.
    if (!pairs.length && n > 0 && pg() > pages) return go(link({ page: String(pages) }), true);
    total.textContent = tn('dup.total', n);
    if (st() === 'open' && !v('type') && !v('commune') && !v('record')) setCount('duplicates', n);
    put(list, pairs.map(card));
    put(empty, h('p', null, h('strong', null, t('dup.empty.' + st()))), muted(t('dup.emptyHint')));
    empty.hidden = pairs.length > 0;
    info.textContent = t('page', { p: k.num(pg()), n: k.num(pages) });
    prev.disabled = pg() <= 1; next.disabled = pg() >= pages;
    pager.hidden = n <= PAGE;
    fillCommunes(list);
    fillRefs(list, ctx);
  }
  areas().then(() => ctx.alive() && communeOptions(commune, v('commune')), () => {});
  update(params);
  return { update };
}

const countOpen = () => api('GET', '/v1/duplicates?limit=0').then(d => d.total);
// A record's open pairs, in a box on its page (filled once the server answers; none: hidden).
function recordBox(rec, ctx) {
  if (!S.user || S.user.role !== 'supervisor' || !['person', 'household'].includes(rec.record_type) || rec.status !== 'active') return null;
  const box = h('section', { class: 'card small dup-box', test: 'record-duplicates', hidden: true });
  get('/v1/duplicates?state=open&limit=20&record=' + encodeURIComponent(rec.id), { signal: ctx.signal }).then(d => {
    const pairs = (d && d.pairs) || [];
    if (!pairs.length || !ctx.alive()) return;
    put(box, h('h2', null, t('dup.box')), h('p', { class: 'muted' }, t('dup.boxHelp', { n: k.num(d.total) })),
      h('ul', { class: 'dup-links' }, pairs.map(p => { const o = p.a.id === rec.id ? p.b : p.a;
        return h('li', { test: 'record-duplicate', 'data-id': o.id }, h('a', { href: '#/records/' + encodeURIComponent(o.id) }, title(o)), ' ', scoreBadge(p), h('div', { class: 'muted small' }, describe(o))); })),
      h('a', { href: '#/duplicates?record=' + encodeURIComponent(rec.id), test: 'record-duplicates-all' }, t('dup.boxAll')));
    box.hidden = false;
  }, () => {});
  return box;
}
return { strings, recordBox, after: 'records', routes: [{ re: /^duplicates$/, page: pDuplicates, nav: 'nav.duplicates', key: 'duplicates', roles: ['supervisor'], count: countOpen }] };
});
