'use strict';
/* fieldsync: the record list's exports, "Tải Excel" and "Tải CSV", with the list's current
   filters. Loaded before app.js, which calls this with its helpers (see "Pages in files of
   their own" there); pRecords puts `el` beside the total and calls `update` with the query of
   each list it loads. The API is GET /v1/records/export.csv|xlsx in server/src/http/openapi.json. */
(self.fieldsyncPages = self.fieldsyncPages || []).push(k => {
const { h, t, S } = k;

const strings = {
vi: {
  'ex.xlsx': 'Tải Excel', 'ex.csv': 'Tải CSV',
  'ex.xlsxHelp': 'Các hồ sơ theo bộ lọc đang chọn, mỗi loại hồ sơ một trang tính.',
  'ex.csvHelp': 'Các hồ sơ theo bộ lọc đang chọn, cho phần mềm khác; để mở bằng Excel, hãy tải Excel.',
  'ex.csvType': 'Chọn một loại hồ sơ để tải CSV (mỗi tệp CSV một loại).',
},
en: {
  'ex.xlsx': 'Download Excel', 'ex.csv': 'Download CSV',
  'ex.xlsxHelp': 'The records the filters select, a sheet per record type.',
  'ex.csvHelp': 'The records the filters select, for other programs; to open them in Excel, take the Excel file.',
  'ex.csvType': 'Choose a record type to download CSV (one type per CSV file).',
},
};

// The two links: the workbook always, the CSV once a type is chosen.
k.recordExports = () => {
  const xlsx = h('a', { class: 'btn', download: '', test: 'export-records-xlsx', title: t('ex.xlsxHelp') }, t('ex.xlsx'));
  const csv = h('a', { class: 'btn', download: '', test: 'export-records-csv' }, t('ex.csv'));
  const el = h('div', { class: 'record-exports', test: 'record-exports' }, xlsx, csv);
  const update = query => {
    const p = new URLSearchParams(query);
    p.delete('limit'); p.delete('offset'); p.set('lang', S.lang === 'en' ? 'en' : 'vi');
    xlsx.href = '/v1/records/export.xlsx?' + p;
    if (p.get('type')) {
      csv.href = '/v1/records/export.csv?' + p;
      csv.removeAttribute('aria-disabled'); csv.title = t('ex.csvHelp');
    } else {
      csv.removeAttribute('href');
      csv.setAttribute('aria-disabled', 'true'); csv.title = t('ex.csvType');
    }
  };
  return { el, update };
};

return { strings };
});
