//! `GET /v1/records/export.csv` and `GET /v1/records/export.xlsx`: the records the list shows,
//! selected by the list's own filters (read by its parsing, applied by its storage conditions),
//! as files for Excel. The CSV holds one record type (`type` is required); the workbook has a
//! sheet per type the caller may see. Support cases go only to accounts with sensitive access,
//! and an export that carries any is audited first (who, the filters, how many cases).
//!
//! Both are streamed: the records are read a page at a time on the API workers (keyset on the
//! id), each page written out before the next is read — the CSV to the response, gzipped when
//! the client accepts it, the workbook's sheets to temporary files that the finished file is
//! then streamed from — so memory does not grow with the number of records.

mod columns;
mod csv;
mod xlsx;

use super::compress::accepts_gzip;
use super::error::ApiError;
use super::query::{bad, read};
use super::records::{supervisor_or_admin, ListQuery};
use super::schema::labels;
use super::{credentials, with_state, AppState, Credentials};
use crate::dates::vietnam_minute;
use crate::scope::Scope;
use crate::storage::{now_ms, RecordQuery};
use bytes::Bytes;
use columns::{Columns, Lang};
use fieldsync_core::RecordType;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use uuid::Uuid;
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use warp::http::{HeaderMap, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Reply};

/// Records read per trip to storage.
const PAGE: u32 = 500;
/// Bytes of the finished workbook sent per chunk.
const CHUNK: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Xlsx,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// Why an export stopped after its answer had begun.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("the client went away")]
    Gone,
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("temporary file: {0}")]
    Io(#[from] std::io::Error),
}

type Chunk = Result<Bytes, std::io::Error>;

/// The export's parameters: `lang`, and every other one the list's (`limit` and `offset`
/// refused: an export has every record the filters select).
fn read_query(raw: &str) -> Result<(Lang, RecordQuery), ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw).map_err(|e| bad(&format!("query string: {e}")))?;
    let mut lang = None;
    let mut rest = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        match name.as_str() {
            "lang" if lang.is_some() => return Err(bad("query string: duplicate field `lang`")),
            "lang" => lang = Some(value),
            "limit" | "offset" => {
                return Err(bad(&format!(
                    "{name}: an export has every record the filters select; it is not paged"
                )))
            }
            _ => rest.push((name, value)),
        }
    }
    let lang = match lang.as_deref().map(str::trim) {
        None | Some("" | "vi") => Lang::Vi,
        Some("en") => Lang::En,
        Some(other) => return Err(bad(&format!("lang: {other} is not vi or en"))),
    };
    let rest = serde_urlencoded::to_string(&rest).map_err(|_| ApiError::Internal)?;
    let list: ListQuery = read(&rest).map_err(ApiError::BadRequest)?;
    Ok((lang, list.into_query()?))
}

/// What the audit log says of an export's filters: which were set, never the search text (it
/// may be a woman's name).
fn filters_text(q: &RecordQuery) -> String {
    let mut parts = Vec::new();
    if let Some(t) = q.record_type {
        parts.push(format!("type {t}"));
    }
    if let Some(c) = &q.communes {
        parts.push(format!("{} communes", c.len()));
    }
    if let Some(r) = q.review {
        parts.push(format!("review {}", r.as_str()));
    }
    if let Some(c) = q.conflicts {
        parts.push(format!("conflicts {c}"));
    }
    if let Some(p) = q.problems {
        parts.push(format!("problems {p}"));
    }
    if q.deleted {
        parts.push("deleted".into());
    }
    if let Some(since) = q.changed_since_ms {
        parts.push(format!("changed since {}", &vietnam_minute(since)[..10]));
    }
    if q.search.is_some() {
        parts.push("a search".into());
    }
    if parts.is_empty() {
        "no filters".into()
    } else {
        parts.join(", ")
    }
}

/// The file's name: what it holds and today's date in Vietnam.
fn file_name(format: Format, lang: Lang, one_type: Option<RecordType>) -> String {
    let day = &vietnam_minute(now_ms())[..10];
    let (prefix, what) = match (lang, one_type) {
        (Lang::Vi, Some(t)) => (
            "ho-so",
            fieldsync_core::search::fold(labels::record_type(t).0),
        ),
        (Lang::En, Some(t)) => ("records", t.as_str().to_owned()),
        (Lang::Vi, None) => ("ho-so", String::new()),
        (Lang::En, None) => ("records", String::new()),
    };
    let what: String = what
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("{w}-"))
        .collect();
    format!("{prefix}-{what}{day}.{}", format.extension())
}

/// What every page of an export reads with.
#[derive(Clone)]
struct Job {
    state: AppState,
    scope: Arc<Scope>,
    query: Arc<RecordQuery>,
    lang: Lang,
}

impl Job {
    /// The next page of `t` after `after`, turned into bytes (or sheet rows) by `write` on the
    /// API worker that read it; `None` once the type has no more records.
    async fn page<S: Send + 'static>(
        &self,
        t: RecordType,
        after: Option<Uuid>,
        columns: &Arc<Columns>,
        sink: S,
        write: fn(&mut S, Vec<Vec<columns::Cell>>) -> Result<(), ExportError>,
    ) -> Result<(S, Option<Uuid>), ExportError> {
        let (scope, query, columns) = (self.scope.clone(), self.query.clone(), columns.clone());
        let outcome = self
            .state
            .blocking(move |storage| {
                let rows = storage.export_page(&scope, &query, t, after, PAGE)?;
                let last = (rows.len() == PAGE as usize)
                    .then(|| rows.last().map(|r| r.id))
                    .flatten();
                let cells = rows.iter().map(|r| columns.row(r)).collect();
                let mut sink = sink;
                Ok(write(&mut sink, cells).map(|()| (sink, last)))
            })
            .await?;
        outcome
    }
}

async fn send(tx: &mpsc::Sender<Chunk>, bytes: Vec<u8>) -> Result<(), ExportError> {
    if bytes.is_empty() {
        return Ok(());
    }
    tx.send(Ok(Bytes::from(bytes)))
        .await
        .map_err(|_| ExportError::Gone)
}

fn csv_rows(sink: &mut csv::Sink, rows: Vec<Vec<columns::Cell>>) -> Result<(), ExportError> {
    for cells in rows {
        sink.write(&csv::line(&cells))?;
    }
    Ok(())
}

async fn write_csv(
    job: Job,
    t: RecordType,
    gzip: bool,
    tx: mpsc::Sender<Chunk>,
) -> Result<(), ExportError> {
    let columns = Arc::new(Columns::new(t, job.lang));
    let mut sink = csv::Sink::new(gzip);
    sink.write(csv::BOM)?;
    let headers: Vec<columns::Cell> = columns
        .headers()
        .into_iter()
        .map(columns::Cell::Text)
        .collect();
    sink.write(&csv::line(&headers))?;
    let mut after = None;
    loop {
        let (mut next, last) = job.page(t, after, &columns, sink, csv_rows).await?;
        send(&tx, next.take()).await?;
        sink = next;
        match last {
            Some(id) => after = Some(id),
            None => break,
        }
    }
    send(&tx, sink.finish()?).await
}

/// The workbook under construction with the cursor of the sheet being written.
struct Book {
    workbook: rust_xlsxwriter::Workbook,
    cursor: Option<xlsx::SheetCursor>,
}

fn xlsx_rows(book: &mut Book, rows: Vec<Vec<columns::Cell>>) -> Result<(), ExportError> {
    let Book { workbook, cursor } = book;
    if let Some(cursor) = cursor {
        xlsx::write_rows(workbook, cursor, rows)?;
    }
    Ok(())
}

async fn write_xlsx(
    job: Job,
    types: Vec<RecordType>,
    tx: mpsc::Sender<Chunk>,
) -> Result<(), ExportError> {
    // On the data disk: the temporary directory may be a RAM disk, and this is as large as the
    // data it exports. The files have no name and vanish when closed.
    let dir = job
        .state
        .data_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let workbook = {
        let dir = dir.clone();
        job.state
            .blocking(move |_| {
                let mut workbook = rust_xlsxwriter::Workbook::new();
                Ok(workbook.set_tempdir(&dir).map(|_| ()).map(|()| workbook))
            })
            .await??
    };
    let mut book_state = Book {
        workbook,
        cursor: None,
    };
    for t in types {
        let columns = Arc::new(Columns::new(t, job.lang));
        let name = job.lang.pick(labels::record_type(t)).to_owned();
        let headers = columns.headers();
        book_state = job
            .state
            .blocking(move |_| {
                let mut b = book_state;
                Ok(xlsx::begin(&mut b.workbook, &name, headers).map(|cursor| {
                    b.cursor = Some(cursor);
                    b
                }))
            })
            .await??;
        let mut after = None;
        loop {
            let (next, last) = job.page(t, after, &columns, book_state, xlsx_rows).await?;
            book_state = next;
            match last {
                Some(id) => after = Some(id),
                None => break,
            }
            if tx.is_closed() {
                return Err(ExportError::Gone);
            }
        }
    }
    let file = job
        .state
        .blocking(move |_| {
            let mut workbook = book_state.workbook;
            let saved = (|| -> Result<std::fs::File, ExportError> {
                let mut file = tempfile::tempfile_in(&dir)?;
                workbook.save_to_writer(&mut file)?;
                use std::io::Seek;
                file.rewind()?;
                Ok(file)
            })();
            Ok(saved)
        })
        .await??;
    let mut file = tokio::fs::File::from_std(file);
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        send(&tx, buf).await?;
    }
}

async fn export(
    state: AppState,
    auth: Credentials,
    raw: String,
    headers: HeaderMap,
    format: Format,
) -> Result<Response, ApiError> {
    let peer = auth.peer;
    let caller = supervisor_or_admin(&state, auth).await?;
    let (lang, query) = read_query(&raw)?;
    let scope = caller.scope();
    let types: Vec<RecordType> =
        match (format, query.record_type) {
            (_, Some(t)) => vec![t],
            (Format::Csv, None) => return Err(bad(
                "type: a CSV export holds one record type (household, person, group, activity, \
                 support_case); the Excel export holds them all",
            )),
            (Format::Xlsx, None) => RecordType::ALL.to_vec(),
        };
    let types: Vec<RecordType> = types
        .into_iter()
        .filter(|t| scope.sensitive || !t.is_sensitive())
        .collect();
    if types.is_empty() {
        return Err(ApiError::Denied(
            "support cases are exported only for accounts with sensitive access".into(),
        ));
    }
    let slot = state.export_slot(&caller)?;
    let (scope, query) = (Arc::new(scope), Arc::new(query));
    if scope.sensitive {
        let (s, q) = (scope.clone(), query.clone());
        let cases = state
            .blocking(move |storage| Ok(storage.export_sensitive_count(&s, &q)?))
            .await?;
        if cases > 0 {
            // Before any of them is read: an export that cannot be audited does not happen.
            state
                .audit_sensitive(
                    Some(&caller),
                    peer,
                    "export_records",
                    Some(format.extension().to_owned()),
                    Some(format!("{cases} support cases; {}", filters_text(&query))),
                )
                .await?;
        }
    }
    let gzip = format == Format::Csv && accepts_gzip(&headers);
    let name = file_name(format, lang, (types.len() == 1).then(|| types[0]));
    let job = Job {
        state,
        scope,
        query,
        lang,
    };
    let (tx, mut rx) = mpsc::channel::<Chunk>(2);
    let user = caller.user.username.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let result = match format {
            Format::Csv => write_csv(job, types[0], gzip, tx.clone()).await,
            Format::Xlsx => write_xlsx(job, types, tx.clone()).await,
        };
        match result {
            Ok(()) => tracing::info!(%user, format = format.extension(), "records exported"),
            Err(ExportError::Gone) => tracing::debug!(%user, "export abandoned by the client"),
            Err(e) => {
                tracing::error!(%user, error = %e, "record export failed");
                // Ends the answer without its last chunk: the client sees a broken download,
                // never a file that looks complete.
                let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = warp::reply::stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    if gzip {
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if format == Format::Csv {
        h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    Ok(response)
}

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let route = |path: &'static str, format: Format| {
        warp::path("v1")
            .and(warp::path("records"))
            .and(warp::path(path))
            .and(warp::path::end())
            .and(warp::get())
            .and(with_state(state.clone()))
            .and(credentials())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .then(move |s, a, q, h| async move { super::respond(export(s, a, q, h, format).await) })
    };
    route("export.csv", Format::Csv)
        .or(route("export.xlsx", Format::Xlsx))
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_reads_the_lists_filters_and_its_own() {
        let (lang, q) = read_query("type=person&review=approved&q=Hoa&lang=en").unwrap();
        assert_eq!(lang, Lang::En);
        assert_eq!(q.record_type, Some(RecordType::Person));
        assert_eq!(q.search.as_deref(), Some("Hoa"));
        assert_eq!(read_query("").unwrap().0, Lang::Vi);
        let why = |raw: &str| read_query(raw).unwrap_err().to_string();
        assert!(why("limit=5").starts_with("limit: "));
        assert!(why("lang=fr").starts_with("lang: "));
        assert!(why("colour=red").contains("unknown field `colour`"));
        assert!(why("review=maybe").contains("unknown review state"));
        assert!(why("lang=en&lang=vi").contains("duplicate field `lang`"));
    }

    #[test]
    fn the_audit_names_filters_but_not_the_search() {
        let (_, q) = read_query("type=support_case&q=Nguy%E1%BB%85n&conflicts=true").unwrap();
        let text = filters_text(&q);
        assert_eq!(text, "type support_case, conflicts true, a search");
    }

    #[test]
    fn file_names_carry_the_type_and_date() {
        let name = file_name(Format::Csv, Lang::Vi, Some(RecordType::Household));
        assert!(name.starts_with("ho-so-ho-gia-dinh-20"), "{name}");
        assert!(name.ends_with(".csv"));
        let name = file_name(Format::Xlsx, Lang::En, None);
        assert!(
            name.starts_with("records-20") && name.ends_with(".xlsx"),
            "{name}"
        );
    }
}
