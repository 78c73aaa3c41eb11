'use strict';
/* fieldsync: plan progress ("Tiến độ") on the supervisors' page. Loaded before app.js,
   which calls this with its helpers (see "Pages in files of their own" there); same rules: no inline script or style attribute (bar widths are set through the
   CSSOM), every string a key of both languages, data-test attributes for browser tests.
   The API is GET /v1/indicators (and its exports and drill-down) in server/src/http/openapi.json. */
(self.fieldsyncPages = self.fieldsyncPages || []).push(k => {
const { h, put, t, has, num, btn, td, muted, msgRow, table, field, check, fmtDate, get, go, communeEl, fillCommunes, S, ETH, title, badge } = k;

const strings = {
vi: {
  'nav.progress': 'Tiến độ',
  'pg.title': 'Tiến độ thực hiện kế hoạch', 'pg.asOf': 'Số liệu tính đến ngày', 'pg.year': 'Cuối năm',
  'pg.count': 'Hồ sơ được tính', 'pg.approved': 'Chỉ hồ sơ đã duyệt', 'pg.all': 'Tất cả hồ sơ đã gửi (xem trước)',
  'pg.area': 'Địa bàn', 'pg.province': 'Toàn tỉnh {n}', 'pg.mine': 'Địa bàn phụ trách', 'pg.district': '{n} (huyện, trước 01/7/2025)',
  'pg.csv': 'Tải CSV', 'pg.csvHelp': 'Cho phần mềm khác; để mở bằng Excel hay LibreOffice, hãy tải Excel (XLSX).', 'pg.xlsx': 'Tải Excel (XLSX)', 'pg.show': 'Xem',
  'pg.preview': 'Đang xem trước: số liệu gồm cả hồ sơ chưa duyệt, đã trả lại hoặc đã thay đổi sau khi duyệt. Báo cáo chính thức chỉ tính hồ sơ đã duyệt.',
  'pg.partial': 'Số liệu chỉ gồm các xã trong địa bàn bạn phụ trách; mục tiêu là tổng mục tiêu của các xã đó (nếu kế hoạch có giao).',
  'pg.noneApproved': 'Chưa có hồ sơ nào được duyệt trong địa bàn. Chọn “Tất cả hồ sơ đã gửi” để xem trước.',
  'col.indicator': 'Chỉ tiêu', 'col.result': 'Kết quả', 'col.target': 'Mục tiêu', 'col.progress': 'Tiến độ so với mục tiêu',
  'pg.percentOf': '{p}% ({a}/{b})', 'pg.noTarget': 'Không giao chỉ tiêu', 'pg.reached': 'đạt {p}%',
  'pg.hidden': 'Từ 0 đến 4 người: được ẩn để không thể nhận diện nạn nhân.', 'pg.sensitive': 'Nhạy cảm',
  'pg.band': 'Số nạn nhân ghi theo khoảng 5 người, để không ai suy ra được một số nhỏ.',
  'pg.withheld.period': 'Không công bố: theo huyện, xã và theo nhóm chỉ công bố cho cả giai đoạn kế hoạch (chọn ngày cuối kế hoạch).',
  'pg.withheld.area': 'Không công bố cho địa bàn ghép này; xem toàn tỉnh hoặc từng huyện, xã.',
  'pg.withheld.partition': 'Không công bố: có huyện, xã hoặc nhóm cùng cấp dưới 5 người, nên cả cấp này được ẩn.',
  'pg.victimsAsOf': 'Tính đến {d} (cuối quý), chỉ hồ sơ đã duyệt, theo khoảng 5 người',
  'pg.eth.minority': 'Dân tộc thiểu số', 'pg.bdVictims': 'Theo giới tính, nhóm tuổi và dân tộc: chỉ công bố cho toàn tỉnh, cả giai đoạn kế hoạch, khi mọi nhóm có từ 5 người.',
  'pg.sensitiveHelp': 'Số liệu từ hồ sơ vụ việc hỗ trợ: chỉ người có quyền xem; tính đến cuối quý, chỉ hồ sơ đã duyệt, theo khoảng 5 người, dưới 5 được ẩn; mỗi lần xuất file hoặc xem danh sách đều được ghi nhật ký.',
  'pg.undated': '{n} hồ sơ chưa có ngày nên chưa được tính', 'pg.details': 'Chi tiết', 'pg.plan': 'Kế hoạch: “{w}”',
  'pg.byYear': 'Theo năm (luỹ kế đến cuối năm)', 'pg.byCommune': 'Theo xã', 'pg.records': 'Xem hồ sơ được tính',
  'pg.population': 'Xem danh sách mẫu số', 'pg.bd.sex': 'Giới tính', 'pg.bd.ethnicity': 'Dân tộc', 'pg.bd.age': 'Nhóm tuổi',
  'pg.unknown': 'Không rõ',
  'pg.age.0-15': 'Dưới 16 tuổi', 'pg.age.16-30': '16–30 tuổi', 'pg.age.31-59': '31–59 tuổi', 'pg.age.60+': 'Từ 60 tuổi trở lên',
  'pg.merged': 'gồm {n}', 'pg.loading': 'Đang tính số liệu…',
  'dr.title': 'Hồ sơ được tính', 'dr.population': 'Danh sách mẫu số', 'dr.back': '‹ Tiến độ', 'dr.total': '{n} hồ sơ',
  'dr.empty': 'Không có hồ sơ nào.', 'dr.in': 'tại {a}, tính đến {d}',
  'act.export_indicators': 'Xuất số liệu tiến độ (có số liệu nạn nhân)', 'act.view_indicator_cases': 'Xem danh sách vụ việc theo chỉ tiêu',
},
en: {
  'nav.progress': 'Progress',
  'pg.title': 'Plan progress', 'pg.asOf': 'Figures as of', 'pg.year': 'End of',
  'pg.count': 'Records counted', 'pg.approved': 'Approved records only', 'pg.all': 'All submitted records (preview)',
  'pg.area': 'Area', 'pg.province': 'Whole province of {n}', 'pg.mine': 'Your areas', 'pg.district': '{n} (district, before 1 Jul 2025)',
  'pg.csv': 'Download CSV', 'pg.csvHelp': 'For other programs; to open in Excel or LibreOffice, download the Excel (XLSX) file.', 'pg.xlsx': 'Download Excel (XLSX)', 'pg.show': 'Show',
  'pg.preview': 'Preview: the figures include records not yet approved, returned, or changed since approval. Official reports count approved records only.',
  'pg.partial': 'Figures cover only the communes of your areas; the target is the sum of their targets (where the plan sets them).',
  'pg.noneApproved': 'No record in your areas is approved yet. Choose “All submitted records” for a preview.',
  'col.indicator': 'Indicator', 'col.result': 'Result', 'col.target': 'Target', 'col.progress': 'Progress towards the target',
  'pg.percentOf': '{p}% ({a}/{b})', 'pg.noTarget': 'No target set', 'pg.reached': '{p}% reached',
  'pg.hidden': '0 to 4 people: hidden so that no victim can be identified.', 'pg.sensitive': 'Sensitive',
  'pg.band': 'Victims are counted in bands of 5 people, so that no one can work out a small number.',
  'pg.withheld.period': 'Not published: by district, commune and group only for the whole plan period (choose the plan\'s last day).',
  'pg.withheld.area': 'Not published for this combination of areas; see the whole province or each district and commune.',
  'pg.withheld.partition': 'Not published: a district, commune or group at the same level has fewer than 5, so the whole level is hidden.',
  'pg.victimsAsOf': 'As of {d} (end of quarter), approved records only, in bands of 5',
  'pg.eth.minority': 'Ethnic minorities', 'pg.bdVictims': 'By sex, age group and ethnic group: published for the whole province and plan period only, when every group has 5 or more.',
  'pg.sensitiveHelp': 'Figures from support cases: only for people with access; as of the end of a quarter, approved records only, in bands of 5 people, under 5 hidden; every export and listing is logged.',
  'pg.undated': '{n} records without a date are not counted yet', 'pg.details': 'Details', 'pg.plan': 'Plan: “{w}”',
  'pg.byYear': 'By year (to the end of each year)', 'pg.byCommune': 'By commune', 'pg.records': 'Show the records counted',
  'pg.population': 'Show the population', 'pg.bd.sex': 'Sex', 'pg.bd.ethnicity': 'Ethnic group', 'pg.bd.age': 'Age group',
  'pg.unknown': 'Unknown',
  'pg.age.0-15': 'Under 16', 'pg.age.16-30': '16–30', 'pg.age.31-59': '31–59', 'pg.age.60+': '60 and over',
  'pg.merged': 'incl. {n}', 'pg.loading': 'Counting…',
  'dr.title': 'Records counted', 'dr.population': 'Population', 'dr.back': '‹ Progress', 'dr.total': '{n} records',
  'dr.empty': 'No records.', 'dr.in': 'in {a}, as of {d}',
  'act.export_indicators': 'Exported progress figures (with victim figures)', 'act.view_indicator_cases': 'Listed the cases behind a figure',
},
};

// The query of the page's hash, as the API takes it.
function apiQuery(q) {
  const p = new URLSearchParams();
  if (q.get('as_of')) p.set('as_of', q.get('as_of'));
  if (q.get('all') === '1') p.set('all_submitted', 'true');
  return p;
}
const name = d => (S.lang === 'vi' ? d.name_vi : d.name_en);
// A victim figure is never a number: a band ("10–14"), "<5", or null where it is not published
// (the share says why); the server decides all three (docs/indicators.md §3).
const exact = v => typeof v === 'number';
function fig(s) {
  if (s.value === null) return h('abbr', { title: t('pg.withheld.' + (s.withheld || 'area')), class: 'hidden-fig', test: 'withheld' }, '—');
  if (!exact(s.value)) return h('abbr', { title: t(s.value === '<5' ? 'pg.hidden' : 'pg.band'), class: 'hidden-fig' }, s.value);
  return num(s.value);
}
const pct = p => (p == null ? '—' : num(p) + '%');
// The result as words: a count, or a share with its population.
function result(d, c) {
  if (d.unit === 'percent' && exact(c.value)) return c.percent == null ? '—' : t('pg.percentOf', { p: num(c.percent), a: num(c.value), b: num(c.denominator) });
  return fig(c);
}
// A bar of progress towards the target (capped at the full width, the figure says the rest).
function bar(c) {
  if (c.target == null) return muted(t('pg.noTarget'));
  const p = c.progress == null ? 0 : c.progress, fill = h('span', { class: 'fill' + (p >= 100 ? ' done' : '') });
  fill.style.width = Math.min(100, Math.max(0, p)) + '%';
  return h('div', { class: 'barcell' },
    h('span', { class: 'bar', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.min(100, Math.round(p))), 'aria-label': t('pg.reached', { p: num(p) }) }, fill),
    h('span', { class: 'barlabel' }, c.progress == null ? '—' : num(c.progress) + '%'));
}
// Whether a figure leads to the records behind it: a victim figure when the server says so, any
// other but a share of nobody.
const countable = (d, c) => (d.sensitive ? c.listable === true : !(d.unit === 'percent' && !c.denominator));
const target = (d, c) => (c.target == null ? '—' : d.unit === 'percent' ? num(c.target) + '%' : num(c.target));
function recordsHref(q, indicator, areaCode, part) {
  const p = new URLSearchParams(q);
  p.set('indicator', indicator); p.set('area', areaCode);
  if (part) p.set('part', part); else p.delete('part');
  return '#/progress/records?' + p;
}
function areaLabel(a) {
  if (a.level === 'province') return a.complete === false ? t('pg.mine') : t('pg.province', { n: a.name });
  if (a.level === 'district') return t('pg.district', { n: a.name });
  return a.name;
}
// Sexes and ethnic groups by the record model's names (the server's tables), age groups by ours.
const catName = (dim, k) => (dim === 'ethnicity' && k === 'minority' ? t('pg.eth.minority') : dim === 'ethnicity' ? ETH.get(k) || t('pg.unknown')
  : dim === 'sex' && has('c.person.sex.' + k) ? t('c.person.sex.' + k) : has('pg.' + dim + '.' + k) ? t('pg.' + dim + '.' + k) : t('pg.unknown'));

// ---- The progress page: controls, then one row per indicator for the chosen area.
async function pProgress(ctx) {
  const q = ctx.q, set = ch => {
    const p = new URLSearchParams(q);
    for (const k in ch) if (ch[k]) p.set(k, ch[k]); else p.delete(k);
    go('#/progress' + (p.toString() ? '?' + p : ''));
  };
  const head = h('div', { class: 'pg-head' }, h('h1', null, t('pg.title')));
  const status = h('p', { class: 'muted', test: 'progress-loading' }, t('pg.loading'));
  ctx.main.append(head, status);
  let r;
  try { r = await get('/v1/indicators?' + apiQuery(q), ctx); } catch (e) { status.remove(); throw e; }
  if (!ctx.alive()) return;
  status.remove();
  const areasR = r.areas || [], chosen = areasR.find(a => a.code === q.get('area')) || areasR[0];
  if (!chosen) return;
  head.append(h('p', { class: 'muted lead' }, S.lang === 'en' && r.plan.name_en ? r.plan.name_en : r.plan.name));

  // Controls.
  const asOf = h('input', { type: 'date', test: 'progress-as-of', value: r.as_of, min: '1900-01-01', max: '2100-12-31', onchange: () => set({ as_of: asOf.value }) });
  const first = +r.plan.start.slice(0, 4), last = +r.plan.end.slice(0, 4), planYears = [];
  for (let y = first; y <= last; y++) planYears.push(y);
  const years = h('div', { class: 'years', role: 'group', 'aria-label': t('pg.asOf') }, planYears.map(y =>
    btn(t('pg.year') + ' ' + y, 'small' + (r.as_of === y + '-12-31' ? ' on' : ''), 'progress-year', () => set({ as_of: y + '-12-31' }))));
  const mode = ['approved', 'all'].map(m => {
    const i = h('input', { type: 'radio', name: 'pg-mode', value: m, checked: (m === 'all') === r.all_submitted, test: 'progress-mode-' + m, onchange: () => set({ all: m === 'all' ? '1' : '' }) });
    return check(i, t('pg.' + m));
  });
  const place = h('select', { test: 'progress-area', onchange: () => set({ area: place.value === areasR[0].code ? '' : place.value }) },
    areasR.map(a => h('option', { value: a.code, selected: a === chosen }, areaLabel(a))));
  const exp = apiQuery(q);
  ctx.main.append(h('form', { class: 'card pg-controls', onsubmit: ev => ev.preventDefault() },
    h('div', { class: 'pg-row' }, field(t('pg.asOf'), asOf), years),
    h('div', { class: 'pg-row' }, h('fieldset', { class: 'pg-mode' }, h('legend', null, t('pg.count')), mode), field(t('pg.area'), place)),
    h('div', { class: 'exports' },
      h('a', { class: 'btn', href: '/v1/indicators/export.xlsx?' + exp, download: '', test: 'export-xlsx' }, t('pg.xlsx')),
      h('a', { class: 'btn', href: '/v1/indicators/export.csv?' + exp, download: '', test: 'export-csv', title: t('pg.csvHelp') }, t('pg.csv')))));
  if (r.all_submitted) ctx.main.append(h('p', { class: 'note warn', test: 'progress-preview' }, t('pg.preview')));
  if (areasR[0].complete === false) ctx.main.append(h('p', { class: 'note small' }, t('pg.partial')));
  const defs = r.indicators || [];
  const anything = defs.some(d => { const c = chosen.results[d.id]; return c && (c.value !== 0 || c.denominator > 0); });
  if (!r.all_submitted && !anything) ctx.main.append(h('p', { class: 'note', test: 'progress-none' }, t('pg.noneApproved')));

  // One row per indicator; a click opens its details below it.
  const tbody = h('tbody');
  const communes = areasR.filter(a => a.level === 'commune' && (chosen.communes || []).includes(a.code));
  for (const d of defs) {
    const c = chosen.results[d.id];
    if (!c) continue;
    const open = btn(t('pg.details'), 'small ghost', 'progress-details', () => toggle());
    open.setAttribute('aria-expanded', 'false');
    const listable = countable(d, c);
    const tr = h('tr', { test: 'progress-row', 'data-indicator': d.id },
      td(h('div', { class: 'ind-name' }, name(d), d.sensitive && h('span', { class: 'badge warn', title: t('pg.sensitiveHelp') }, t('pg.sensitive'))),
        c.undated > 0 && h('div', { class: 'hint' }, t('pg.undated', { n: num(c.undated) })),
        c.as_of && h('div', { class: 'hint', test: 'progress-victims-as-of' }, t('pg.victimsAsOf', { d: fmtDate(c.as_of) }))),
      h('td', { class: 'num', test: 'progress-value' }, listable ? h('a', { href: recordsHref(q, d.id, chosen.code) }, result(d, c)) : result(d, c)),
      h('td', { class: 'num', test: 'progress-target' }, target(d, c)),
      h('td', { class: 'barcol' }, bar(c)),
      h('td', { class: 'acts' }, open));
    const detail = h('tr', { class: 'pg-detail', hidden: true }, h('td', { colspan: 5 }));
    function toggle() {
      detail.hidden = !detail.hidden;
      open.setAttribute('aria-expanded', String(!detail.hidden));
      if (!detail.hidden && !detail.firstChild.firstChild) put(detail.firstChild, details(d, c));
    }
    tbody.append(tr, detail);
  }
  ctx.main.append(h('section', null, h('h2', null, areaLabel(chosen), chosen.merged_from && chosen.merged_from.length > 0 && muted(' · ' + t('pg.merged', { n: chosen.merged_from.map(m => m[1]).join(', ') }))),
    table('progress-table', ['col.indicator', 'col.result', 'col.target', 'col.progress', ''], tbody, 'progress')));

  // An indicator's details: the plan's words, the years, the breakdowns, the communes.
  function details(d, c) {
    const parts = [h('p', { class: 'muted' }, t('pg.plan', { w: d.plan_wording }))];
    const years = Object.keys(c.by_year || {});
    if (years.length) parts.push(h('div', { class: 'pg-block' }, h('h3', null, t('pg.byYear')),
      h('dl', { class: 'pg-years' }, years.map(y => [h('dt', null, y), h('dd', null, result(d, c.by_year[y]))]))));
    if (d.sensitive && !c.breakdown) parts.push(h('p', { class: 'note small' }, t('pg.bdVictims')));
    if (c.breakdown) {
      parts.push(h('div', { class: 'pg-bd' }, ['sex', 'age', 'ethnicity'].map(dim => {
        const groups = Object.entries(c.breakdown[dim] || {}).filter(([, s]) => d.sensitive || s.value !== 0 || s.denominator);
        return h('div', { class: 'pg-block' }, h('h3', null, t('pg.bd.' + dim)), groups.length ? h('dl', { class: 'pg-years' },
          groups.map(([k, s]) => [h('dt', null, catName(dim, k)), h('dd', null, result(d, s))])) : muted('—'));
      })));
    }
    const links = h('p', { class: 'pg-links' });
    if (countable(d, c)) links.append(h('a', { href: recordsHref(q, d.id, chosen.code), test: 'progress-records' }, t('pg.records')));
    if (d.unit === 'percent') links.append(' · ', h('a', { href: recordsHref(q, d.id, chosen.code, 'denominator') }, t('pg.population')));
    parts.push(links);
    if (communes.length) {
      const rows = communes.map(a => {
        const x = a.results[d.id];
        return x && h('tr', null, td(h('a', { href: '#/progress?' + new URLSearchParams([...q.entries()].filter(([k]) => k !== 'area').concat([['area', a.code]])) }, a.name)),
          h('td', { class: 'num' }, countable(d, x) ? h('a', { href: recordsHref(q, d.id, a.code) }, result(d, x)) : result(d, x)),
          h('td', { class: 'num' }, target(d, x)), h('td', { class: 'barcol' }, bar(x)));
      });
      parts.push(h('div', { class: 'pg-block' }, h('h3', null, t('pg.byCommune')), table('progress-communes', ['pg.area', 'col.result', 'col.target', 'col.progress'], h('tbody', null, rows))));
    }
    return parts;
  }
}

// ---- The records behind a figure.
async function pProgressRecords(ctx) {
  const q = ctx.q, page = Math.max(1, parseInt(q.get('page'), 10) || 1), size = 50;
  const p = apiQuery(q);
  p.set('area', q.get('area') || ''); p.set('limit', String(size)); p.set('offset', String((page - 1) * size));
  if (q.get('part')) p.set('part', q.get('part'));
  const back = new URLSearchParams(q);
  for (const k of ['indicator', 'part', 'page']) back.delete(k);
  ctx.main.append(h('p', null, h('a', { href: '#/progress?' + back, test: 'progress-back' }, t('dr.back'))));
  const [d, r] = await Promise.all([get('/v1/indicators/' + encodeURIComponent(q.get('indicator') || '') + '/records?' + p, ctx), get('/v1/indicators?' + apiQuery(q), ctx)]);
  if (!ctx.alive()) return;
  const def = (r.indicators || []).find(x => x.id === d.indicator), a = (r.areas || []).find(x => x.code === d.area);
  ctx.main.append(h('h1', null, (def ? name(def) : d.indicator)),
    h('p', { class: 'muted lead' }, t(d.part === 'denominator' ? 'dr.population' : 'dr.title'), ' ', t('dr.in', { a: a ? areaLabel(a) : d.area, d: fmtDate(d.as_of || r.as_of) }), ' · ', t('dr.total', { n: num(d.total) })));
  const tbody = h('tbody', null, d.records.length ? d.records.map(x => h('tr', { test: 'progress-record' },
    td(h('a', { href: '#/records/' + encodeURIComponent(x.id) }, title(x))), h('td', { class: 'nowrap' }, t('type.' + x.record_type)),
    td(communeEl(x.commune, x.commune_name)), td(badge(x.review || 'pending')))) : msgRow(4, t('dr.empty')));
  ctx.main.append(table('progress-records-table', ['col.title', 'col.type', 'col.commune', 'col.review'], tbody));
  const pages = Math.max(1, Math.ceil(d.total / size));
  const to = n => { const x = new URLSearchParams(q); x.set('page', String(n)); go('#/progress/records?' + x); };
  if (pages > 1) ctx.main.append(h('div', { class: 'pager' }, btn(t('prev'), '', 'page-prev', () => to(page - 1)), h('span', null, t('page', { p: num(page), n: num(pages) })), btn(t('next'), '', 'page-next', () => to(page + 1))));
  ctx.main.querySelectorAll('[data-test=page-prev]').forEach(b => { b.disabled = page <= 1; });
  ctx.main.querySelectorAll('[data-test=page-next]').forEach(b => { b.disabled = page >= pages; });
  fillCommunes(tbody);
}

return {
  strings, after: 'duplicates',
  routes: [
    { re: /^progress$/, page: pProgress, nav: 'nav.progress', key: 'progress', roles: ['supervisor', 'admin'] },
    { re: /^progress\/records$/, page: pProgressRecords, key: 'progress', roles: ['supervisor', 'admin'] },
  ],
};
});
