'use strict';
/* fieldsync: the supervisors' page. Vanilla ES2020, no build step, no dependencies. Served under
   a strict CSP (default-src 'self'): no inline script or style attribute, no eval. Pages are
   entries of ROUTES; every visible string is a key of L (vi, en); the JSON API is
   server/src/http/openapi.json. Stable data-test attributes are for browser tests. */
(() => {

// ---- Strings
const L = {
vi: {
  app: 'fieldsync · Dự án 8', loading: 'Đang tải…', retry: 'Thử lại', saving: 'Đang lưu…', close: 'Đóng',
  save: 'Lưu', cancel: 'Huỷ', yes: 'Có', no: 'Không', all: 'Tất cả', empty: 'Chưa nhập', choose: '— Chọn —',
  'nav.records': 'Hồ sơ', 'nav.users': 'Tài khoản', 'nav.devices': 'Thiết bị', 'nav.audit': 'Nhật ký',
  'nav.main': 'Điều hướng chính', logout: 'Đăng xuất', lang: 'Ngôn ngữ',
  'role.collector': 'Cán bộ thu thập', 'role.supervisor': 'Giám sát', 'role.admin': 'Quản trị',
  'login.sub': 'Trang xét duyệt hồ sơ dành cho cán bộ giám sát và quản trị viên.',
  'login.user': 'Tên đăng nhập', 'login.pass': 'Mật khẩu', 'login.go': 'Đăng nhập', 'login.busy': 'Đang đăng nhập…',
  'login.need': 'Hãy nhập tên đăng nhập và mật khẩu.',
  'login.foot': 'Dự án 8: Thực hiện bình đẳng giới và giải quyết những vấn đề cấp thiết đối với phụ nữ và trẻ em',
  'login.expired': 'Phiên làm việc đã hết hạn. Vui lòng đăng nhập lại.', 'login.out': 'Bạn đã đăng xuất.',
  'login.collector': 'Trang này chỉ dành cho cán bộ giám sát và quản trị viên. Cán bộ thu thập dữ liệu vui lòng dùng ứng dụng trên điện thoại.',
  'err.bad_request': 'Yêu cầu không hợp lệ.', 'err.unauthorized': 'Phiên làm việc đã hết hạn. Vui lòng đăng nhập lại.',
  'err.bad_credentials': 'Sai tên đăng nhập hoặc mật khẩu.', 'err.forbidden': 'Bạn không có quyền thực hiện thao tác này.',
  'err.not_found': 'Không tìm thấy dữ liệu, hoặc bạn không có quyền xem.',
  'err.conflict': 'Dữ liệu đã tồn tại hoặc vừa bị thay đổi.', 'err.upgrade_needed': 'Cần cập nhật lên phiên bản mới.',
  'err.payload_too_large': 'Dữ liệu gửi lên quá lớn.',
  'err.too_many_requests': 'Máy chủ đang bận hoặc có quá nhiều lần thử. Vui lòng thử lại sau {s} giây.',
  'err.request_timeout': 'Kết nối quá chậm nên máy chủ đã ngắt yêu cầu. Vui lòng thử lại.',
  'err.disk_full': 'Máy chủ đã hết dung lượng lưu trữ nên chưa lưu được thay đổi. Vui lòng báo quản trị viên.',
  'err.internal': 'Máy chủ gặp lỗi. Vui lòng thử lại sau.',
  'err.network': 'Không kết nối được máy chủ. Hãy kiểm tra đường truyền rồi thử lại.',
  'err.detail': 'Chi tiết', 'err.value': 'Hãy nhập giá trị.',
  'review.pending': 'Chờ duyệt', 'review.approved': 'Đã duyệt', 'review.returned': 'Đã trả lại',
  'review.changed': 'Đã thay đổi sau khi duyệt', 'status.deleted': 'Đã xoá', 'status.merged': 'Đã gộp',
  'list.filters': 'Bộ lọc', 'list.commune': 'Xã', 'list.allCommunes': 'Tất cả xã trong địa bàn',
  'list.now': 'Xã hiện nay (từ 01/7/2025)', 'list.before': 'Trước 01/7/2025',
  'list.district': '{n} (cả huyện)', 'list.type': 'Loại hồ sơ', 'list.review': 'Xét duyệt',
  'list.only': 'Chỉ hiện hồ sơ', 'list.conflicts': 'Có xung đột', 'list.problems': 'Có lỗi dữ liệu',
  'list.deleted': 'Đã xoá', 'list.since': 'Thay đổi từ ngày', 'list.clear': 'Xoá bộ lọc', 'list.show': 'Xem kết quả',
  'list.q': 'Tìm kiếm', 'list.qph': 'Tìm theo tên, CCCD, số điện thoại…', 'list.qgo': 'Tìm',
  'list.qhint': 'Gõ có dấu hay không dấu đều được.', 'list.total': '{n} hồ sơ', 'list.range': 'Hiển thị {a}–{b}',
  'list.empty': 'Không có hồ sơ nào khớp với bộ lọc.', 'list.emptyHint': 'Hãy bỏ bớt điều kiện lọc hoặc đổi từ khoá tìm kiếm.',
  'col.title': 'Hồ sơ', 'col.type': 'Loại', 'col.commune': 'Xã', 'col.review': 'Xét duyệt',
  'col.flags': 'Cần xử lý', 'col.updated': 'Cập nhật lúc', page: 'Trang {p}/{n}',
  'col.place': 'Xã · Thôn/làng', 'col.collector': 'Cán bộ thu thập', 'col.select': 'Chọn hồ sơ {n}',
  'col.selectAll': 'Chọn tất cả hồ sơ trên trang này', 'sort.by': 'Sắp xếp theo {c}',
  'bulk.selected': 'Đã chọn {n} hồ sơ', 'bulk.approve': 'Duyệt các hồ sơ đã chọn', 'bulk.clear': 'Bỏ chọn',
  'bulk.done': 'Đã duyệt {n} hồ sơ.', 'bulk.skipped': 'Không duyệt {n} hồ sơ:', 'bulk.confirm': 'Duyệt {n} hồ sơ đã chọn?', 'bulk.yes': 'Duyệt',
  'skip.not_found': 'không tìm thấy hoặc bạn không có quyền xem', 'skip.not_active': 'đã xoá hoặc đã gộp',
  'skip.conflicts': 'còn xung đột cần xử lý', 'skip.problems': 'còn lỗi dữ liệu', 'skip.already_approved': 'đã được duyệt trước đó',
  'skip.refused': 'máy chủ không nhận thay đổi',
  prev: '‹ Trang trước', next: 'Trang sau ›', 'n.conflicts': '{n} xung đột', 'n.conflicts1': '1 xung đột', 'n.problems1': '1 lỗi dữ liệu', 'list.total1': '1 hồ sơ', 'n.problems': '{n} lỗi dữ liệu',
  notitle: '(chưa có tên)', 'area.now': 'nay là {n}', 'area.old': 'trước 01/7/2025',
  'rec.back': '‹ Danh sách hồ sơ', 'rec.fields': 'Thông tin hồ sơ', 'rec.conflicts': 'Xung đột dữ liệu',
  'rec.conflictsHelp': 'Các trường dưới đây được sửa trên nhiều thiết bị trước khi kịp đồng bộ với nhau. Hãy chọn giá trị đúng, hoặc nhập giá trị khác.',
  'rec.shown': 'đang hiển thị', 'rec.pick': 'Chọn giá trị này', 'rec.other': 'Nhập giá trị khác',
  'rec.inConflict': 'Xung đột', 'rec.problems': 'Lỗi dữ liệu', 'rec.history': 'Lịch sử thay đổi',
  'rec.review': 'Xét duyệt', 'rec.comment': 'Nhận xét gửi cán bộ thu thập', 'rec.commentHint': 'Bắt buộc khi trả lại: ghi rõ cần sửa gì.',
  'rec.approve': 'Duyệt', 'rec.return': 'Trả lại', 'rec.reset': 'Đưa về chờ duyệt',
  'rec.needComment': 'Hãy ghi nhận xét để cán bộ biết cần sửa gì.',
  'rec.changed': 'Đã thay đổi sau khi duyệt', 'rec.changedHelp': 'Giá trị đã duyệt → giá trị hiện tại:',
  'rec.resolveFirst': 'Hồ sơ còn xung đột dữ liệu: nên giải quyết trước khi duyệt.',
  'rec.readonly': 'Tài khoản quản trị chỉ được xem hồ sơ; việc xét duyệt và sửa do cán bộ giám sát thực hiện.',
  'rec.reviewKept': 'Hồ sơ này đã được gộp: hãy xét duyệt hồ sơ được giữ lại.',
  'rec.sensitive': 'Hồ sơ nhạy cảm: chỉ người được cấp quyền mới xem được, và mỗi lần xem đều được ghi vào nhật ký.',
  'rec.deleted': 'Hồ sơ này đã bị xoá.', 'rec.merged': 'Hồ sơ này trùng và đã được gộp vào hồ sơ khác:',
  'rec.open': 'Mở hồ sơ', 'rec.gone': 'hồ sơ không xem được', 'rec.saved': 'Đã lưu.',
  'rec.unmerge': 'Hoàn tác gộp', 'rec.unmerged': 'Đã hoàn tác gộp: hai hồ sơ lại đứng riêng.', 'rec.refMerged': 'đã gộp vào',
  'rec.absorbed': 'Hồ sơ trùng đã gộp vào đây',
  'rec.absorbedHelp': 'Các hồ sơ này trùng với hồ sơ đang xem và đã được gộp vào. Chúng không bị xoá: có thể mở xem, hoặc hoàn tác gộp.',
  'rec.late': 'Sửa sau khi gộp', 'rec.take': 'Lấy giá trị này', 'rec.hasIt': 'Hồ sơ này đã có giá trị này',
  'rec.lateHelp': 'Một điện thoại chưa kịp đồng bộ đã sửa hồ sơ trùng sau khi gộp. Giá trị lúc gộp → giá trị mới: hãy xem hồ sơ này có cần lấy giá trị mới không.',
  'rec.approvedOk': 'Đã duyệt hồ sơ.', 'rec.returnedOk': 'Đã trả lại hồ sơ cho cán bộ thu thập.',
  'rec.id': 'Mã hồ sơ', 'rec.updated': 'Cập nhật lần cuối', 'rec.lastComment': 'Nhận xét',
  'rec.noConflictEdit': 'Xung đột này được xử lý trên điện thoại.',
  cleared: 'đã xoá giá trị', 'who.unknown': 'Không rõ người nhập', 'dev.unknown': 'không rõ thiết bị',
  'h.time': 'Thời gian nhận', 'h.who': 'Người thực hiện', 'h.device': 'Thiết bị', 'h.what': 'Nội dung thay đổi',
  'h.create': 'Tạo hồ sơ', 'h.delete': 'Xoá hồ sơ', 'h.restore': 'Khôi phục hồ sơ', 'h.approved': 'Duyệt hồ sơ',
  'h.returned': 'Trả lại hồ sơ', 'h.pending': 'Đưa về chờ duyệt', 'h.comment': 'Nhận xét: “{c}”',
  'h.nocomment': 'Xoá nhận xét', 'h.mergedInto': 'Gộp hồ sơ này vào hồ sơ', 'h.absorbed': 'Gộp hồ sơ',
  'h.add': 'thêm', 'h.remove': 'bỏ', 'h.none': 'Chưa có thay đổi nào.', 'h.more': 'Xem tất cả {n} lần thay đổi',
  'h.intoThis': 'vào hồ sơ này', 'h.unmerged': 'Hủy gộp: hồ sơ này tách khỏi hồ sơ', 'h.released': 'Hủy gộp hồ sơ',
  'h.fromThis': 'khỏi hồ sơ này', 'h.took': 'Lấy từ hồ sơ trùng', 'h.correction': 'Sửa', 'h.approve': 'Duyệt',
  'h.return': 'Trả lại', 'h.phoneTime': 'theo giờ điện thoại: {t}', 'h.noPhoneTime': 'điện thoại không ghi giờ',
  'rec.correct': 'Sửa', 'rec.correctA': 'Sửa {f}', 'rec.corrected': 'Đã sửa {f}.', 'rec.correctHint': 'Để trống rồi lưu để xoá giá trị (nếu trường không bắt buộc).',
  'rec.invalid': 'Chưa lưu được giá trị này',
  'u.username': 'Tên đăng nhập', 'u.role': 'Vai trò', 'u.areas': 'Địa bàn', 'u.sensitive': 'Được xem vụ việc nhạy cảm',
  'u.grant': 'Được phép cấp quyền xem vụ việc nhạy cảm cho người khác', 'u.state': 'Trạng thái',
  'u.active': 'Đang hoạt động', 'u.disabled': 'Đã khoá', 'u.edit': 'Sửa', 'u.disable': 'Khoá', 'u.enable': 'Mở khoá',
  'u.create': 'Tạo tài khoản mới', 'u.createGo': 'Tạo tài khoản', 'u.password': 'Mật khẩu', 'u.pwHint': 'Ít nhất 10 ký tự.',
  'u.areasHint': 'Mã địa bàn, cách nhau bằng dấu phẩy, ví dụ: 62.610, 51.102', 'u.addArea': 'Thêm địa bàn',
  'u.addAreaPh': 'Gõ tên xã, huyện…', 'u.newPw': 'Mật khẩu mới', 'u.resetPw': 'Đặt lại mật khẩu',
  'u.created': 'Đã tạo tài khoản {u}.', 'u.saved': 'Đã lưu tài khoản {u}.', 'u.pwSet': 'Đã đặt mật khẩu mới cho {u}.',
  'u.allAreas': 'Tất cả địa bàn', 'u.unknownArea': 'Mã không có trong danh mục: {c}', 'u.none': 'Chưa có tài khoản nào.',
  'u.taken': 'Tên đăng nhập này đã có.', 'u.you': '(bạn)', 'u.editing': 'Sửa tài khoản {u}',
  'u.fullName': 'Họ và tên', 'u.phone': 'Số điện thoại', 'u.phoneHint': 'Chỉ gồm chữ số, có thể bắt đầu bằng +.',
  'd.help': 'Thu hồi thiết bị khi điện thoại bị mất hoặc cán bộ nghỉ việc: thiết bị đó sẽ không đồng bộ được nữa. Dữ liệu đã gửi lên máy chủ vẫn được giữ nguyên.',
  'd.user': 'Người dùng', 'd.name': 'Tên thiết bị', 'd.kind': 'Loại', 'd.phone': 'Điện thoại', 'd.browser': 'Trình duyệt',
  'd.state': 'Trạng thái', 'd.active': 'Đang dùng', 'd.revoked': 'Đã thu hồi', 'd.revoke': 'Thu hồi',
  'd.ask': 'Thu hồi thiết bị này?', 'd.confirm': 'Xác nhận thu hồi', 'd.done': 'Đã thu hồi thiết bị “{n}”.', 'd.none': 'Chưa có thiết bị nào.',
  'a.title': 'Nhật ký hoạt động', 'a.help': 'Ai đã làm gì, khi nào, từ địa chỉ nào. Không ai sửa hay xoá được nhật ký.',
  'a.time': 'Thời gian', 'a.user': 'Người dùng', 'a.action': 'Hành động', 'a.target': 'Đối tượng', 'a.detail': 'Chi tiết',
  'a.peer': 'Địa chỉ IP', 'a.older': 'Cũ hơn ›', 'a.newest': '‹ Mới nhất', 'a.none': 'Không có mục nào.',
  'act.login': 'Đăng nhập', 'act.login_failed': 'Đăng nhập sai', 'act.logout': 'Đăng xuất',
  'act.view_case': 'Xem vụ việc nhạy cảm', 'act.review': 'Xét duyệt hồ sơ', 'act.edit': 'Sửa hồ sơ',
  'act.account_create': 'Tạo tài khoản', 'act.account_change': 'Sửa tài khoản', 'act.password_change': 'Đổi mật khẩu',
  'act.device_revoke': 'Thu hồi thiết bị', 'act.enrol': 'Đăng ký thiết bị',
  'act.merge': 'Gộp hồ sơ trùng', 'act.unmerge': 'Hoàn tác gộp', 'act.dismiss_duplicate': 'Đánh dấu không trùng',
  'act.sync_cases': 'Thiết bị nhận vụ việc nhạy cảm', 'act.export_indicators': 'Tải số liệu có nạn nhân',
  'act.view_indicator_cases': 'Xem danh sách vụ việc của chỉ tiêu',
  'a.log': 'Nhật ký', 'a.devices': 'Thiết bị giữ vụ việc nhạy cảm', 'a.sensitive': 'Nhạy cảm',
  'a.devHelp': 'Các thiết bị đã nhận vụ việc nhạy cảm khi đồng bộ, hoặc đã ghi vụ việc, kể cả thiết bị đã thu hồi. Mỗi lần đồng bộ có vụ việc đều được ghi vào nhật ký.',
  'a.deliveries': 'Số lần nhận', 'a.lastDelivery': 'Lần nhận gần nhất', 'a.casesWritten': 'Vụ việc đã ghi',
  'a.noDevices': 'Chưa có thiết bị nào nhận vụ việc nhạy cảm.', 'a.oneDevice': 'Chỉ các mục của thiết bị {d}.',
  'a.allEntries': 'Xem tất cả', 'a.nCases': '{n} vụ việc',
  'f.$deleted': 'Đã xoá',
},
en: {
  app: 'fieldsync · Project 8', loading: 'Loading…', retry: 'Try again', saving: 'Saving…', close: 'Close',
  save: 'Save', cancel: 'Cancel', yes: 'Yes', no: 'No', all: 'All', empty: 'Not entered', choose: '— Choose —',
  'nav.records': 'Records', 'nav.users': 'Accounts', 'nav.devices': 'Devices', 'nav.audit': 'Audit log',
  'nav.main': 'Main navigation', logout: 'Log out', lang: 'Language',
  'role.collector': 'Collector', 'role.supervisor': 'Supervisor', 'role.admin': 'Administrator',
  'login.sub': 'Record review for supervisors and administrators.',
  'login.user': 'Username', 'login.pass': 'Password', 'login.go': 'Log in', 'login.busy': 'Logging in…',
  'login.need': 'Enter your username and password.',
  'login.foot': 'Project 8: gender equality and urgent issues for women and children',
  'login.expired': 'Your session has expired. Please log in again.', 'login.out': 'You have logged out.',
  'login.collector': 'This page is for supervisors and administrators. Collectors use the phone app.',
  'err.bad_request': 'The request was not valid.', 'err.unauthorized': 'Your session has expired. Please log in again.',
  'err.bad_credentials': 'Wrong username or password.', 'err.forbidden': 'You are not allowed to do this.',
  'err.not_found': 'Not found, or you may not see it.', 'err.conflict': 'It already exists or was just changed.',
  'err.upgrade_needed': 'A newer version is needed.', 'err.payload_too_large': 'What was sent is too large.',
  'err.too_many_requests': 'The server is busy or there were too many attempts. Try again in {s} seconds.',
  'err.request_timeout': 'The connection was too slow and the server gave up. Please try again.',
  'err.disk_full': 'The server is out of storage, so changes cannot be saved. Please tell an administrator.',
  'err.internal': 'The server had an error. Please try again later.',
  'err.network': 'Cannot reach the server. Check the connection and try again.',
  'err.detail': 'Details', 'err.value': 'Enter a value.',
  'review.pending': 'Pending', 'review.approved': 'Approved', 'review.returned': 'Returned',
  'review.changed': 'Changed after approval', 'status.deleted': 'Deleted', 'status.merged': 'Merged',
  'list.filters': 'Filters', 'list.commune': 'Commune', 'list.allCommunes': 'All communes in your area',
  'list.now': 'Current communes (from 1 Jul 2025)', 'list.before': 'Before 1 Jul 2025',
  'list.district': '{n} (whole district)', 'list.type': 'Record type', 'list.review': 'Review',
  'list.only': 'Only records', 'list.conflicts': 'With conflicts', 'list.problems': 'With data problems',
  'list.deleted': 'Deleted', 'list.since': 'Changed since', 'list.clear': 'Clear filters', 'list.show': 'Show results',
  'list.q': 'Search', 'list.qph': 'Search by name, ID card, phone…', 'list.qgo': 'Search',
  'list.qhint': 'Accents do not matter.', 'list.total': '{n} records', 'list.range': 'Showing {a}–{b}',
  'list.empty': 'No records match the filters.', 'list.emptyHint': 'Remove some filters or change the search words.',
  'col.title': 'Record', 'col.type': 'Type', 'col.commune': 'Commune', 'col.review': 'Review',
  'col.flags': 'To resolve', 'col.updated': 'Updated', page: 'Page {p}/{n}',
  'col.place': 'Commune · Village', 'col.collector': 'Collector', 'col.select': 'Select record {n}',
  'col.selectAll': 'Select every record on this page', 'sort.by': 'Sort by {c}',
  'bulk.selected': '{n} records selected', 'bulk.approve': 'Approve the selected records', 'bulk.clear': 'Clear selection',
  'bulk.done': '{n} records approved.', 'bulk.skipped': '{n} records not approved:', 'bulk.confirm': 'Approve the {n} selected records?', 'bulk.yes': 'Approve',
  'skip.not_found': 'not found, or you may not see it', 'skip.not_active': 'deleted or merged',
  'skip.conflicts': 'has conflicts to resolve', 'skip.problems': 'has data problems', 'skip.already_approved': 'already approved',
  'skip.refused': 'the server refused the change',
  prev: '‹ Previous', next: 'Next ›', 'n.conflicts': '{n} conflicts', 'n.conflicts1': '1 conflict', 'n.problems1': '1 problem', 'list.total1': '1 record', 'n.problems': '{n} problems',
  notitle: '(no name)', 'area.now': 'now {n}', 'area.old': 'before 1 Jul 2025',
  'rec.back': '‹ All records', 'rec.fields': 'Record details', 'rec.conflicts': 'Conflicting values',
  'rec.conflictsHelp': 'These fields were changed on several devices before they synced with each other. Pick the right value or enter another one.',
  'rec.shown': 'shown now', 'rec.pick': 'Pick this value', 'rec.other': 'Enter another value',
  'rec.inConflict': 'Conflict', 'rec.problems': 'Data problems', 'rec.history': 'Change history',
  'rec.review': 'Review', 'rec.comment': 'Comment for the collector', 'rec.commentHint': 'Required to return: say what to correct.',
  'rec.approve': 'Approve', 'rec.return': 'Return', 'rec.reset': 'Back to pending',
  'rec.needComment': 'Write a comment so the collector knows what to correct.',
  'rec.changed': 'Changed after approval', 'rec.changedHelp': 'Approved value → current value:',
  'rec.resolveFirst': 'This record still has conflicts: resolve them before approving.',
  'rec.readonly': 'Administrators can only read records; supervisors review and edit them.',
  'rec.reviewKept': 'This record was merged: review the record it was merged into.',
  'rec.sensitive': 'Sensitive record: only people with permission can see it, and every view is logged.',
  'rec.deleted': 'This record was deleted.', 'rec.merged': 'This record was a duplicate and was merged into:',
  'rec.open': 'Open record', 'rec.gone': 'record not available', 'rec.saved': 'Saved.',
  'rec.unmerge': 'Undo merge', 'rec.unmerged': 'Merge undone: the two records stand on their own again.', 'rec.refMerged': 'merged into',
  'rec.absorbed': 'Duplicates merged into this record',
  'rec.absorbedHelp': 'These records duplicated this one and were merged into it. They are not deleted: open them, or undo the merge.',
  'rec.late': 'Edited after the merge', 'rec.take': 'Take this value', 'rec.hasIt': 'This record has this value',
  'rec.lateHelp': 'A phone that had not synced yet edited the duplicate after the merge. Value at the merge → new value: decide whether this record should take the new one.',
  'rec.approvedOk': 'Record approved.', 'rec.returnedOk': 'Record returned to the collector.',
  'rec.id': 'Record id', 'rec.updated': 'Last updated', 'rec.lastComment': 'Comment',
  'rec.noConflictEdit': 'This conflict is resolved on the phone.',
  cleared: 'value cleared', 'who.unknown': 'Unknown person', 'dev.unknown': 'unknown device',
  'h.time': 'Received', 'h.who': 'Person', 'h.device': 'Device', 'h.what': 'What changed',
  'h.create': 'Created the record', 'h.delete': 'Deleted the record', 'h.restore': 'Restored the record',
  'h.approved': 'Approved', 'h.returned': 'Returned', 'h.pending': 'Back to pending', 'h.comment': 'Comment: “{c}”',
  'h.nocomment': 'Removed the comment', 'h.mergedInto': 'Merged this record into', 'h.absorbed': 'Merged record',
  'h.add': 'added', 'h.remove': 'removed', 'h.none': 'No changes yet.', 'h.more': 'Show all {n} changes',
  'h.intoThis': 'into this record', 'h.unmerged': 'Merge undone: this record stands apart from', 'h.released': 'Merge undone: record',
  'h.fromThis': 'stands apart from this record', 'h.took': 'Taken from the duplicate', 'h.correction': 'Corrected', 'h.approve': 'Approved',
  'h.return': 'Returned', 'h.phoneTime': 'by the phone\'s clock: {t}', 'h.noPhoneTime': 'no time from the phone',
  'rec.correct': 'Correct', 'rec.correctA': 'Correct {f}', 'rec.corrected': '{f} corrected.', 'rec.correctHint': 'Leave empty and save to clear the value (if the field is optional).',
  'rec.invalid': 'This value was not saved',
  'u.username': 'Username', 'u.role': 'Role', 'u.areas': 'Areas', 'u.sensitive': 'Sees support cases',
  'u.grant': 'May give access to support cases', 'u.state': 'State', 'u.active': 'Active', 'u.disabled': 'Disabled',
  'u.edit': 'Edit', 'u.disable': 'Disable', 'u.enable': 'Enable', 'u.create': 'New account', 'u.createGo': 'Create account', 'u.password': 'Password',
  'u.pwHint': 'At least 10 characters.', 'u.areasHint': 'Area codes separated by commas, e.g. 62.610, 51.102',
  'u.addArea': 'Add an area', 'u.addAreaPh': 'Type a commune or district…', 'u.newPw': 'New password',
  'u.resetPw': 'Set password', 'u.created': 'Account {u} created.', 'u.saved': 'Account {u} saved.',
  'u.pwSet': 'New password set for {u}.', 'u.allAreas': 'Everywhere', 'u.unknownArea': 'Unknown area code: {c}',
  'u.none': 'No accounts yet.', 'u.taken': 'This username is taken.', 'u.you': '(you)', 'u.editing': 'Edit account {u}',
  'u.fullName': 'Full name', 'u.phone': 'Phone number', 'u.phoneHint': 'Digits only, optionally after a +.',
  'd.help': 'Revoke a device when a phone is lost or its user leaves: it can no longer sync. Data it already sent stays on the server.',
  'd.user': 'User', 'd.name': 'Device name', 'd.kind': 'Kind', 'd.phone': 'Phone', 'd.browser': 'Browser',
  'd.state': 'State', 'd.active': 'In use', 'd.revoked': 'Revoked', 'd.revoke': 'Revoke',
  'd.ask': 'Revoke this device?', 'd.confirm': 'Yes, revoke', 'd.done': 'Device “{n}” revoked.', 'd.none': 'No devices yet.',
  'a.title': 'Audit log', 'a.help': 'Who did what, when, from where. Nobody can change or delete it.',
  'a.time': 'Time', 'a.user': 'User', 'a.action': 'Action', 'a.target': 'Target', 'a.detail': 'Detail',
  'a.peer': 'IP address', 'a.older': 'Older ›', 'a.newest': '‹ Newest', 'a.none': 'No entries.',
  'act.login': 'Logged in', 'act.login_failed': 'Failed login', 'act.logout': 'Logged out',
  'act.view_case': 'Viewed a support case', 'act.review': 'Reviewed a record', 'act.edit': 'Edited a record',
  'act.account_create': 'Created an account', 'act.account_change': 'Changed an account',
  'act.password_change': 'Changed a password', 'act.device_revoke': 'Revoked a device', 'act.enrol': 'Enrolled a device',
  'act.merge': 'Merged a duplicate', 'act.unmerge': 'Undid a merge', 'act.dismiss_duplicate': 'Marked not a duplicate',
  'act.sync_cases': 'A device received support cases', 'act.export_indicators': 'Exported figures with victims',
  'act.view_indicator_cases': 'Listed the cases behind a figure',
  'a.log': 'Log', 'a.devices': 'Devices holding support cases', 'a.sensitive': 'Sensitive',
  'a.devHelp': 'Devices that received support cases by sync, or wrote some, revoked ones included. Every sync that delivers cases is logged.',
  'a.deliveries': 'Deliveries', 'a.lastDelivery': 'Last delivery', 'a.casesWritten': 'Cases written',
  'a.noDevices': 'No device has received support cases.', 'a.oneDevice': 'Only the entries of device {d}.',
  'a.allEntries': 'Show all', 'a.nCases': '{n} cases', 'a.nCases1': '1 case',
  'f.$deleted': 'Deleted',
}};

// ---- Domain tables: GET /v1/schema, loaded once after login (see schema() below)
// FIELDS: per record type, [field, kind] in form order; a field is text unless its kind says
// otherwise, and a code field's kind names its list in CODES. ETH: ethnic group code → name.
// SENSITIVE: the record types only people with sensitive access see.
const FIELDS = {}, CODES = {}, ETH = new Map(), SENSITIVE = new Set(), REVIEWS = ['pending', 'returned', 'changed', 'approved'];
const fkind = (ty, f) => ((FIELDS[ty] || []).find(x => x[0] === f) || [f, f[0] === '$' ? 'bool' : 'text'])[1];

// ---- State, strings, DOM helpers
const S = { user: null, csrf: null, lang: 'vi', next: null, flash: null, lastList: '#/records', titles: new Map(), schemaP: null, A: null, scope: null };
try { S.lang = localStorage.getItem('fieldsync.lang') === 'en' ? 'en' : 'vi'; } catch (e) { /* storage off */ }
const has = k => k in L.vi;
const t = (k, p) => (L[S.lang][k] ?? L.vi[k] ?? k).replace(/\{(\w+)\}/g, (_, x) => (p && p[x]) ?? '');
// A count in words: the key ending in 1 when there is one (English singular).
const tn = (k, n) => t(n === 1 && has(k + '1') ? k + '1' : k, { n: num(n) });
const flabel = (ty, f) => (has(`f.${ty}.${f}`) ? t(`f.${ty}.${f}`) : has('f.' + f) ? t('f.' + f) : f);
const num = n => Number(n || 0).toLocaleString(S.lang === 'vi' ? 'vi-VN' : 'en-US');
const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'required']);
// h('tag', {attr, class, test: data-test, onX: handler}, ...children (nodes, text, arrays; null/false skipped))
function h(tag, a, ...kids) {
  const e = document.createElement(tag);
  for (const k in a || {}) {
    const v = a[k];
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'test') e.dataset.test = v;
    else if (PROPS.has(k)) e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  return add(e, kids);
}
function add(e, kids) {
  for (const k of kids) if (Array.isArray(k)) add(e, k); else if (k != null && k !== false) e.append(k);
  return e;
}
const put = (e, ...kids) => { e.textContent = ''; return add(e, kids); };
const btn = (label, cls, test, onclick, type) => h('button', { type: type || 'button', class: 'btn ' + (cls || ''), test, onclick }, label);
const td = (...k) => h('td', null, ...k);
const muted = s => h('span', { class: 'muted' }, s);
const msgRow = (n, s) => h('tr', null, h('td', { colspan: n, class: 'loadrow' }, s));
const table = (test, heads, body, cls) => h('div', { class: 'tablewrap' }, h('table', { class: 'grid ' + (cls || ''), test },
  h('thead', null, h('tr', null, heads.map(k => h('th', { scope: 'col' }, k && t(k))))), body));
let uid = 0;
// A labelled control.
function field(label, control, hint) {
  control.id = control.id || 'i' + ++uid;
  return h('div', { class: 'fld' }, h('label', { for: control.id }, label), control, hint && (hint instanceof Node ? hint : h('p', { class: 'hint' }, hint)));
}
const check = (c, label, ...more) => h('label', { class: 'check' }, c, ' ', label, ...more);
const DTF = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Ho_Chi_Minh', day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
function fmtTime(iso) {
  const d = new Date(iso), p = {};
  if (!iso || isNaN(d)) return iso || '';
  for (const x of DTF.formatToParts(d)) p[x.type] = x.value;
  return `${p.day}/${p.month}/${p.year} ${p.hour}:${p.minute}`;
}
const fmtDate = s => (/^\d{4}-\d\d-\d\d$/.test(s) ? s.slice(8) + '/' + s.slice(5, 7) + '/' + s.slice(0, 4) : s);

// ---- API
class ApiError extends Error {
  constructor(status, code, message, retry) { super(message); Object.assign(this, { status, code, retry }); }
}
const BY_STATUS = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 408: 'request_timeout', 409: 'conflict', 413: 'payload_too_large', 429: 'too_many_requests', 503: 'disk_full' };
const cache = new Map();
// One JSON request. A 401 (other than at login) ends the session and shows the login page.
async function api(method, path, body, opt = {}) {
  const hd = { Accept: 'application/json', 'X-Requested-With': 'fieldsync' };
  if (method !== 'GET') { hd['Content-Type'] = 'application/json'; if (S.csrf) hd['X-CSRF-Token'] = S.csrf; cache.clear(); counts.clear(); }
  const ac = new AbortController(), tm = setTimeout(() => ac.abort(), 120000);
  if (opt.signal) opt.signal.addEventListener('abort', () => ac.abort());
  let res, data = null;
  try {
    res = await fetch(path, { method, headers: hd, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: opt.cache || 'no-store', signal: ac.signal });
    const txt = await res.text();
    try { data = txt ? JSON.parse(txt) : null; } catch (e) { /* not JSON */ }
  } catch (e) {
    throw Object.assign(new ApiError(0, 'network', ''), { aborted: !!(opt.signal && opt.signal.aborted) });
  } finally { clearTimeout(tm); }
  if (res.ok) return data;
  const err = new ApiError(res.status, (data && data.error) || BY_STATUS[res.status] || 'internal', (data && data.message) || '', parseInt(res.headers.get('Retry-After'), 10) || 0);
  if (data && Array.isArray(data.problems)) err.problems = data.problems;
  if (res.status === 401 && !opt.login) { err.handled = true; expire(); }
  throw err;
}
// A GET whose answer is kept briefly, reused only to redraw the page in the other language.
// A busy server (429 with a short Retry-After) is asked once more after the wait it names.
function get(path, ctx, again = true) {
  if (ctx && ctx.reuse && cache.has(path)) return Promise.resolve(cache.get(path));
  return api('GET', path, undefined, { signal: ctx && ctx.signal }).then(d => {
    cache.set(path, d);
    if (cache.size > 40) cache.delete(cache.keys().next().value);
    return d;
  }, e => {
    if (!again || e.status !== 429 || e.retry > 5 || (ctx && ctx.signal && ctx.signal.aborted)) throw e;
    return new Promise(r => setTimeout(r, Math.max(1, e.retry) * 1000)).then(() => get(path, ctx, false));
  });
}
function expire() {
  if (!S.user) return;
  S.user = S.csrf = S.schemaP = S.scope = null; cache.clear();
  if (!location.hash.startsWith('#/login')) S.next = location.hash;
  S.flash = 'login.expired';
  go('#/login');
}

// ---- The record model and areas
// The server's tables (GET /v1/schema) once per login, kept by the browser with its ETag: record
// types, fields and codes (their names join L as type.*, f.<type>.<field>, c.<type>.<field>.<code>
// and p.*), ethnic groups, the area list and what of it the user covers (scope).
const KINDS = { int: 'int', bool: 'bool', date: 'date', date_or_year: 'dateyear', ethnicity: 'eth', commune: 'commune', ref: 'ref' };
function useSchema(d) {
  const name = (k, l) => { if (l) { L.vi[k] = l.vi; L.en[k] = l.en; } };
  for (const ty of d.record_types) {
    name('type.' + ty.name, ty.label);
    if (ty.sensitive) SENSITIVE.add(ty.name);
    FIELDS[ty.name] = ty.fields.map(f => {
      const set = f.kind.endsWith('_set'), base = set ? f.kind.slice(0, -4) : f.kind, list = 'c.' + ty.name + '.' + f.name;
      name('f.' + ty.name + '.' + f.name, f.label);
      if (f.codes) CODES[list] = f.codes.map(c => (name(list + '.' + c.code, c.label), c.code));
      // Notes (thousands of characters) get a text area, other text a line.
      const kind = base === 'code' ? 'code:' + list : base === 'text' && f.max_chars > 1000 ? 'long' : KINDS[base] || 'text';
      return [f.name, (set ? 'set:' : '') + kind];
    });
  }
  for (const p of d.problems) name('p.' + p.code, p.label);
  ETH.clear();
  for (const g of d.ethnic_groups) ETH.set(g.code, g.name);
  S.A = new Map(d.areas.map(a => [a.code, a]));
  S.scope = d.scope;
}
// An answer that arrives after a logout is dropped (the next user has a scope of her own).
function schema() {
  if (S.schemaP) return S.schemaP;
  const p = S.schemaP = api('GET', '/v1/schema', undefined, { cache: 'no-cache' })
    .then(d => { if (S.schemaP === p) useSchema(d); }, e => { if (S.schemaP === p) S.schemaP = null; throw e; });
  return p;
}
const areas = () => schema().then(() => S.A);
const area = c => S.A && S.A.get(c);
const levelName = a => (a.level === 'district' && !/^(Thành phố|Thị xã|Huyện)/.test(a.name) ? (S.lang === 'vi' ? 'Huyện ' + a.name : a.name + ' district') : a.name);
// A commune by name; a pre-merger one also says what it became (full: even under the same name).
function communeEl(code, name, full) {
  const e = h('span', { class: 'commune', 'data-commune': code || '', 'data-name': name || '', 'data-full': full ? '1' : null });
  fillCommune(e);
  return e;
}
function fillCommune(e) {
  const code = e.dataset.commune, a = area(code), s = a && a.valid_to && a.successor && area(a.successor);
  const name = e.dataset.name || (a && a.name) || code || '—';
  put(e, name, s && (s.name !== name || e.dataset.full) && h('span', { class: 'old' }, ' · ' + (s.name !== name ? t('area.now', { n: s.name }) : t('area.old'))));
}
const fillCommunes = root => areas().then(() => root.querySelectorAll('[data-commune]').forEach(fillCommune)).catch(() => {});
const areaNames = codes => (codes || []).map(c => (c === '*' ? t('u.allAreas') : area(c) ? levelName(area(c)) : c)).join(', ');

// ---- Values in words
// A support case is titled by its kind's code (the server gives no name for it).
const title = r => (r.record_type === 'support_case' && has('c.support_case.case_kind.' + r.title) ? t('c.support_case.case_kind.' + r.title) : r.title || t('notitle'));
function refLink(id) {
  const k = S.titles.get(id);
  return h('a', { href: '#/records/' + encodeURIComponent(id), 'data-ref': id }, k && k.title ? title(k) : t('rec.open') + ' ' + id.slice(0, 8) + '…');
}
// Names the links to other records once the page is drawn, fetching a few records at a time.
function fillRefs(root, ctx) {
  const links = id => root.querySelectorAll(`a[data-ref="${CSS.escape(id)}"]`);
  const show = id => {
    const k = S.titles.get(id);
    links(id).forEach(a => { if (k.title) { a.textContent = title(k); a.title = t('type.' + k.record_type); } else a.append(muted(' (' + t('rec.gone') + ')')); });
  };
  const ids = [...new Set([...root.querySelectorAll('a[data-ref]')].map(a => a.dataset.ref))];
  ids.filter(id => S.titles.has(id)).forEach(show);
  const want = ids.filter(id => !S.titles.has(id)).slice(0, 60);
  const next = () => {
    const id = want.shift();
    if (!id || !ctx.alive()) return;
    api('GET', '/v1/records/' + encodeURIComponent(id), undefined, { signal: ctx.signal })
      .then(r => S.titles.set(id, { title: r.title, record_type: r.record_type }), e => { if (e.status === 404 || e.status === 403) S.titles.set(id, {}); })
      .then(() => { if (ctx.alive() && S.titles.has(id)) show(id); next(); });
  };
  next(); next(); next();
}
// refs: {id of a merged record: id of the record kept} (a record's `refs`), to say where a reference leads.
function fmt(kind, v, refs) {
  if (v == null || v === '') return muted(t('empty'));
  if (kind.startsWith('set:')) return !v.length ? muted(t('empty')) : h('ul', { class: v.length > 8 ? 'setlist many' : 'setlist' }, v.map(m => h('li', null, fmt(kind.slice(4), m, refs))));
  if (kind.startsWith('code:')) return has(kind.slice(5) + '.' + v) ? t(kind.slice(5) + '.' + v) : String(v);
  switch (kind) {
    case 'bool': return t(v === true || v === 'true' ? 'yes' : 'no');
    case 'eth': return ETH.get(String(v)) || String(v);
    case 'commune': return communeEl(v, '', true);
    case 'date': case 'dateyear': return fmtDate(String(v));
    case 'int': return typeof v === 'number' ? num(v) : String(v);
    case 'ref': return refs && refs[v] ? h('span', { class: 'mref', test: 'ref-merged', 'data-from': v, 'data-to': refs[v] },
      refLink(String(v)), ' ', h('span', { class: 'tag' }, t('rec.refMerged')), ' ', refLink(String(refs[v]))) : refLink(String(v));
    case 'long': return h('span', { class: 'long' }, String(v));
  }
  return String(v);
}
// A person as the page names them: the full name, with the username beside it when asked.
const personName = (p, withUser) => (!p ? '' : p.full_name ? p.full_name + (withUser ? ' (' + p.username + ')' : '') : p.username || '');
const person = a => personName(a) || t('who.unknown');
const who = a => person(a) + ' — ' + ((a && a.device_name) || t('dev.unknown'));
const badge = (state, test) => h('span', { class: 'badge rv-' + state, test, 'data-state': state }, t('review.' + state));

// ---- Banners
// Shows an error by its code in the user's language, with the server's words where they help.
function showError(e, text) {
  if (!e || e.aborted || e.handled) return;
  if (!(e instanceof ApiError)) { console.error(e); e = new ApiError(0, 'internal', ''); }
  const box = document.querySelector('[data-test=error]');
  if (!box) return;
  const code = has('err.' + e.code) ? e.code : 'internal';
  put(box, h('div', { class: 'msg' }, h('strong', null, text || t('err.' + code, { s: e.retry || 30 })),
    !text && e.message && ['bad_request', 'conflict', 'forbidden', 'not_found'].includes(code) && h('span', { class: 'detail' }, t('err.detail') + ': ' + e.message)),
  h('button', { type: 'button', class: 'x', 'aria-label': t('close'), test: 'error-close', onclick: clearError }, '×'));
  box.hidden = false;
  const n = document.querySelector('[data-test=notice]');
  if (n) n.hidden = true;
  box.scrollIntoView({ block: 'nearest' });
}
function clearError() { const b = document.querySelector('[data-test=error]'); if (b) put(b).hidden = true; }
let noticeTimer;
function notice(msg) {
  const n = document.querySelector('[data-test=notice]');
  if (!n) return;
  n.textContent = msg; n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 5000);
}
// Runs a button's action: busy while it runs, errors shown, the button restored.
async function act(b, fn) {
  const txt = b.textContent;
  b.disabled = true; b.classList.add('busy'); b.textContent = t('saving');
  clearError();
  try { return await fn(); } catch (e) { showError(e); } finally { if (b.isConnected) { b.disabled = false; b.classList.remove('busy'); b.textContent = txt; } }
}

// ---- Router
// re: matched against the hash path; page(ctx) may return {update(params)} to take a change of the
// query alone without redrawing; nav: menu label key; roles: who may open it (none: any signed-in
// user); count(): a promise of the number shown beside the menu entry (see navCount). Pages in
// files of their own add their entries below.
const ROUTES = [
  { re: /^login$/, page: pLogin, pub: true },
  { re: /^records$/, page: pRecords, nav: 'nav.records', key: 'records' },
  { re: /^records\/([^/]+)$/, page: pRecord, key: 'records' },
  { re: /^users$/, page: pUsers, nav: 'nav.users', key: 'users', roles: ['admin'] },
];
// ---- Pages in files of their own
// A page file (duplicates.js, indicators.js), loaded before this one, queues a function on
// self.fieldsyncPages. Each is called here once with the helpers of KIT and returns
// {strings: {vi, en}, routes, after}: its strings join L and its routes join ROUTES, after the
// routes whose key is `after` (else at the end), which places its menu entry.
const KIT = {
  S, h, add, put, t, tn, has, num, btn, td, muted, field, check, table, fmt, fmtTime, title, refLink, fillRefs,
  badge, FIELDS, fkind, flabel, api, get, act, notice, showError, clearError, go, areas, communeEl, fillCommunes,
  communeOptions, setCount, msgRow, fmtDate, area, ETH,
};
// Boxes page files add to a record's page (recordBox(rec, ctx) → an element or null).
const BOXES = [];
const recordBoxes = (rec, ctx) => BOXES.map(f => { try { return f(rec, ctx); } catch (e) { console.error(e); return null; } });
for (const page of self.fieldsyncPages || []) {
  try {
    const p = page(KIT) || {};
    if (p.recordBox) BOXES.push(p.recordBox);
    for (const l of ['vi', 'en']) Object.assign(L[l], (p.strings || {})[l]);
    const at = ROUTES.map(r => r.key).lastIndexOf(p.after) + 1;
    ROUTES.splice(at || ROUTES.length, 0, ...(p.routes || []));
  } catch (e) { console.error(e); }
}
// Menu counts (a route's count()): kept a minute, dropped whenever the page sends a change.
const counts = new Map();
function navCount(r) {
  const e = h('span', { class: 'n', test: 'nav-count-' + r.key, hidden: true }), c = counts.get(r.key);
  if (c && Date.now() - c.at < 60000) showCount(e, r.key, c.n);
  else r.count().then(n => setCount(r.key, n), () => {});
  return e;
}
function setCount(key, n) {
  counts.set(key, { n, at: Date.now() });
  document.querySelectorAll(`[data-test="nav-count-${key}"]`).forEach(e => showCount(e, key, n));
}
function showCount(e, key, n) {
  e.textContent = num(n); e.hidden = !(n > 0);
  e.title = has('nav.' + key + '.count') ? t('nav.' + key + '.count', { n: num(n) }) : '';
}
let gen = 0, cur = null;
function go(hash, replace) {
  if (location.hash === hash) render();
  else if (replace) { history.replaceState(null, '', hash); render(); } else location.hash = hash;
}
function render(reuse) {
  const raw = location.hash.replace(/^#\/?/, ''), qi = raw.indexOf('?');
  const path = decodeURIComponent(qi < 0 ? raw : raw.slice(0, qi)), q = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
  let r = null, m = null;
  for (const x of ROUTES) if ((m = x.re.exec(path))) { r = x; break; }
  if (!r) return go(S.user ? '#/records' : '#/login', true);
  if (!r.pub && !S.user) { S.next = location.hash; return go('#/login', true); }
  if (r.pub && S.user) return go('#/records', true);
  if (r.roles && !r.roles.includes(S.user.role)) return go('#/records', true);
  if (!r.pub && !S.scope) return awaitSchema(r, reuse);
  if (!reuse && cur && cur.r === r && cur.path === path && cur.inst && cur.inst.update) return cur.inst.update(q);
  const g = ++gen, ac = new AbortController();
  if (cur) cur.ac.abort();
  const ctx = { q, m, main: shell(r), reuse, signal: ac.signal, alive: () => g === gen };
  cur = { r, path, ac, inst: null };
  Promise.resolve().then(() => r.page(ctx)).then(inst => { if (ctx.alive()) cur.inst = inst; }, showError);
}
// The first page after login waits for the server's tables; the frame shows meanwhile.
function awaitSchema(r, reuse) {
  const main = shell(r), g = ++gen;
  if (cur) cur.ac.abort();
  cur = null;
  main.append(h('p', { class: 'loading muted', test: 'loading' }, t('loading')));
  schema().then(() => { if (g === gen) render(reuse); }, e => {
    if (g !== gen) return;
    showError(e);
    put(main, btn(t('retry'), '', 'schema-retry', () => render(reuse)));
  });
}
function setLang(l) {
  S.lang = l;
  try { localStorage.setItem('fieldsync.lang', l); } catch (e) { /* storage off */ }
  document.documentElement.lang = l;
  render(true);
}
const langSwitch = () => h('div', { class: 'lang', role: 'group', 'aria-label': t('lang'), test: 'lang' }, ['vi', 'en'].map(l =>
  h('button', { type: 'button', class: l === S.lang ? 'on' : null, 'aria-pressed': String(l === S.lang), test: 'lang-' + l, lang: l, onclick: () => setLang(l) }, l.toUpperCase())));
// The frame: the top bar when signed in, the banners, and the page's own area (returned).
function shell(r) {
  const app = document.getElementById('app'), main = h('div', { class: 'page' }), u = S.user;
  const banners = [h('div', { class: 'banner err', role: 'alert', test: 'error', hidden: true }), h('div', { class: 'banner ok', role: 'status', test: 'notice', hidden: true })];
  document.title = t('app');
  if (!u) return put(app, h('main', { class: 'login-wrap' }, banners, main)) && main;
  put(app, h('header', { class: 'top' },
    h('a', { class: 'brand', href: '#/records' }, t('app')),
    h('nav', { 'aria-label': t('nav.main') }, ROUTES.filter(x => x.nav && (!x.roles || x.roles.includes(u.role))).map(x =>
      h('a', { href: '#/' + x.key, class: x.key === r.key ? 'on' : null, 'aria-current': x.key === r.key ? 'page' : null, test: 'nav-' + x.key }, t(x.nav), x.count && navCount(x)))),
    h('div', { class: 'me' }, h('span', { class: 'who', test: 'user', title: u.username }, h('strong', null, personName(u)), ' · ', t('role.' + u.role)),
      langSwitch(), btn(t('logout'), 'ghost', 'logout', logout))),
  h('main', { class: 'wrap' }, banners, main));
  return main;
}
async function logout() {
  try { await api('DELETE', '/v1/session', undefined, { login: true }); } catch (e) { /* ended already */ }
  S.user = S.csrf = S.schemaP = S.scope = null; cache.clear(); S.titles.clear();
  S.flash = 'login.out';
  go('#/login');
}

// ---- Login
function pLogin(ctx) {
  const user = h('input', { name: 'username', autocomplete: 'username', test: 'login-username', autocapitalize: 'off', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', test: 'login-password' });
  const b = btn(t('login.go'), 'primary wide', 'login-submit', null, 'submit');
  const flash = S.flash && h('p', { class: 'flash', test: 'login-flash' }, t(S.flash));
  S.flash = null;
  ctx.main.append(h('form', { class: 'card login', test: 'login-form', novalidate: true, onsubmit: async ev => {
    ev.preventDefault();
    clearError();
    if (!user.value.trim() || !pass.value) return showError(new ApiError(400, 'bad_request', ''), t('login.need'));
    b.disabled = true; b.textContent = t('login.busy');
    try {
      const s = await api('POST', '/v1/session', { username: user.value.trim(), password: pass.value }, { login: true });
      S.user = s.user; S.csrf = s.csrf_token;
      const next = S.next; S.next = null;
      go(next && !next.startsWith('#/login') ? next : '#/records');
    } catch (e) {
      b.disabled = false; b.textContent = t('login.go');
      showError(e, e.code === 'forbidden' ? t('login.collector') : null);
      pass.select();
    }
  } },
  h('div', { class: 'login-top' }, h('div', { class: 'logo', 'aria-hidden': 'true' }), langSwitch()),
  h('h1', null, t('app')), h('p', { class: 'sub' }, t('login.sub')), flash,
  field(t('login.user'), user), field(t('login.pass'), pass), b), h('p', { class: 'foot' }, t('login.foot')));
  user.focus();
}

// ---- Record list
// Filters live in the hash (#/records?type=person&review=pending&page=2) so a view can be bookmarked.
const FILTERS = ['commune', 'type', 'review', 'conflicts', 'problems', 'deleted', 'changed_since', 'q'];
// The record list's filters and order as GET /v1/records takes them (no page): one place for
// the list and for whatever lists the same records (ctx.q: the page's own parameters).
function listQuery(ctx) {
  const qs = new URLSearchParams();
  for (const k of [...FILTERS, 'sort', 'order']) if (ctx.q.get(k)) qs.set(k, ctx.q.get(k));
  return qs;
}
// The list's sortable columns: [column label, sort key or null, cell class].
const LIST_COLS = [['col.title', 'title', 'c-title'], ['col.type', null, 'c-type'], ['col.place', 'place', 'c-place'],
  ['col.collector', 'collector', 'c-collector'], ['col.review', 'review', 'c-review'], ['col.flags', null, 'c-flags'], ['col.updated', 'updated', 'c-updated']];
function pRecords(ctx) {
  let ac = null, timer = 0, params = ctx.q;
  const v = k => params.get(k) || '', pg = () => Math.max(1, parseInt(v('page'), 10) || 1);
  const set = (ch, keepPage) => {
    const p = new URLSearchParams(params);
    for (const k in ch) if (ch[k]) p.set(k, ch[k]); else p.delete(k);
    if (!keepPage) p.delete('page');
    go('#/records' + (p.toString() ? '?' + p : ''));
  };
  const sel = (name) => { const s = h('select', { test: 'filter-' + name, onchange: () => set({ [name]: s.value }) }); return s; };
  const commune = sel('commune'), type = sel('type'), review = sel('review');
  const box = name => {
    const c = h('input', { type: 'checkbox', test: 'filter-' + name, onchange: () => set({ [name]: c.checked ? 'true' : '' }) });
    return { c, n: h('span', { class: 'cnt' }), name };
  };
  const boxes = [box('conflicts'), box('problems'), box('deleted')];
  const since = h('input', { type: 'date', test: 'filter-changed-since', max: '2100-12-31', onchange: () => set({ changed_since: since.value }) });
  const q = h('input', { type: 'search', test: 'filter-q', placeholder: t('list.qph'), autocomplete: 'off', oninput: () => { clearTimeout(timer); timer = setTimeout(() => set({ q: q.value.trim() }), 600); } });
  const total = h('span', { class: 'total', test: 'total', 'aria-live': 'polite' }), tbody = h('tbody');
  // Supervisors select records to approve together; admins only read.
  const bulk = S.user.role === 'supervisor', chosen = new Map(), ncols = LIST_COLS.length + (bulk ? 1 : 0);
  const sortOf = () => v('sort') || 'updated', orderOf = () => v('order') || (sortOf() === 'updated' ? 'desc' : 'asc');
  const heads = LIST_COLS.map(([label, key, cls]) => {
    if (!key) return h('th', { scope: 'col', class: cls }, t(label));
    const b = h('button', { type: 'button', class: 'sort', test: 'sort-' + key, title: t('sort.by', { c: t(label) }),
      onclick: () => set({ sort: key, order: sortOf() === key ? (orderOf() === 'asc' ? 'desc' : 'asc') : key === 'updated' ? 'desc' : 'asc' }) }, t(label), h('span', { class: 'arrow', 'aria-hidden': 'true' }));
    return h('th', { scope: 'col', class: cls, 'data-sort': key }, b);
  });
  const all = bulk && h('input', { type: 'checkbox', test: 'select-all', 'aria-label': t('col.selectAll'), onchange: () => {
    for (const c of tbody.querySelectorAll('input[data-test=row-select]')) if (all.checked) chosen.set(c.dataset.id, c.dataset.title); else chosen.delete(c.dataset.id);
    drawChoice();
  } });
  const tableWrap = h('div', { class: 'tablewrap' }, h('table', { class: 'grid records', test: 'records-table' },
    h('thead', null, h('tr', null, bulk && h('th', { scope: 'col', class: 'c-select' }, all), heads)), tbody));
  // Approving asks once more on the page, naming how many records it approves.
  const nsel = h('span', { test: 'bulk-count' }), question = h('span', { class: 'ask', test: 'bulk-question' });
  const asking = on => { ask.hidden = !on; approveBtn.hidden = on; question.textContent = t('bulk.confirm', { n: num(chosen.size) }); };
  const approveBtn = bulk && btn(t('bulk.approve'), 'primary', 'bulk-approve', () => asking(true));
  const ask = h('span', { hidden: true }, question, btn(t('bulk.yes'), 'primary', 'bulk-confirm', ev => approve(ev.currentTarget)),
    btn(t('cancel'), 'ghost', 'bulk-cancel', () => asking(false)));
  const bulkBar = h('div', { class: 'bulkbar', test: 'bulk-bar', hidden: true }, nsel, approveBtn, ask,
    btn(t('bulk.clear'), 'ghost', 'bulk-clear', () => { chosen.clear(); drawChoice(); }));
  const bulkResult = h('div', { class: 'bulk-result card', test: 'bulk-result', role: 'status', hidden: true });
  function pick(c) { if (c.checked) chosen.set(c.dataset.id, c.dataset.title); else chosen.delete(c.dataset.id); drawChoice(); }
  function drawChoice() {
    if (!bulk) return;
    const boxes = [...tbody.querySelectorAll('input[data-test=row-select]')];
    for (const c of boxes) c.checked = chosen.has(c.dataset.id);
    all.checked = boxes.length > 0 && boxes.every(c => c.checked);
    nsel.textContent = t('bulk.selected', { n: num(chosen.size) });
    bulkBar.hidden = !chosen.size;
    asking(false);
  }
  // Approves the chosen records; the server skips (and names) those it may not approve.
  async function approve(b) {
    if (!chosen.size) return;
    await act(b, async () => {
      const names = new Map(chosen), d = await api('POST', '/v1/records/review', { ids: [...chosen.keys()], state: 'approved' });
      chosen.clear();
      put(bulkResult, h('p', { test: 'bulk-approved' }, h('strong', null, t('bulk.done', { n: num(d.approved.length) }))),
        d.skipped.length > 0 && h('p', null, t('bulk.skipped', { n: num(d.skipped.length) })),
        d.skipped.length > 0 && h('ul', { class: 'skipped' }, d.skipped.map(x => h('li', { test: 'bulk-skipped', 'data-id': x.id, 'data-reason': x.reason },
          h('a', { href: '#/records/' + encodeURIComponent(x.id) }, names.get(x.id) || x.id), ' — ', t('skip.' + x.reason)))));
      bulkResult.hidden = false;
      await update(params);
    });
  }
  const exports = KIT.recordExports ? KIT.recordExports() : null;
  const prev = btn(t('prev'), '', 'page-prev', () => set({ page: String(pg() - 1) }, true));
  const next = btn(t('next'), '', 'page-next', () => set({ page: String(pg() + 1) }, true));
  const info = h('span', { class: 'pinfo', test: 'page-info' }), range = muted('');
  const pager = h('div', { class: 'pager', test: 'pager' }, prev, info, next, range);
  const clear = () => go('#/records');
  // On narrow screens the filters are a drawer this button opens (app.css); Escape or the scrim closes it.
  const fcount = h('span', { class: 'n', test: 'filters-count' });
  const opener = h('button', { type: 'button', class: 'btn filters-toggle', test: 'filters-open', 'aria-controls': 'filters', 'aria-expanded': 'false', onclick: () => drawer(true) }, t('list.filters'), fcount);
  const scrim = h('div', { class: 'scrim', test: 'filters-scrim', onclick: () => drawer(false) });
  const drawer = open => {
    aside.classList.toggle('open', open); scrim.classList.toggle('open', open);
    opener.setAttribute('aria-expanded', String(open));
    if (open) commune.focus(); else if (aside.contains(document.activeElement)) opener.focus();
  };
  const empty = h('div', { class: 'empty', test: 'empty', hidden: true }, h('p', null, h('strong', null, t('list.empty'))),
    h('p', { class: 'muted' }, t('list.emptyHint')), btn(t('list.clear'), '', null, clear));
  const aside = h('aside', { class: 'filters card', id: 'filters', 'aria-label': t('list.filters'), onkeydown: ev => { if (ev.key === 'Escape') drawer(false); } },
    h('h2', null, t('list.filters'), h('button', { type: 'button', class: 'btn small ghost drawer-close', test: 'filters-close', onclick: () => drawer(false) }, t('close'))),
    field(t('list.commune'), commune), field(t('list.type'), type), field(t('list.review'), review),
    h('fieldset', null, h('legend', null, t('list.only')), boxes.map(b => check(b.c, t('list.' + b.name), ' ', b.n))),
    field(t('list.since'), since), btn(t('list.clear'), 'ghost wide', 'clear-filters', clear),
    btn(t('list.show'), 'primary wide drawer-done', 'filters-done', () => drawer(false)));
  ctx.main.append(h('div', { class: 'list-layout' }, aside, scrim,
    h('section', { class: 'results' },
      h('form', { class: 'search', role: 'search', onsubmit: ev => { ev.preventDefault(); clearTimeout(timer); set({ q: q.value.trim() }); } },
        field(t('list.q'), q, t('list.qhint')), btn(t('list.qgo'), 'primary', 'search-submit', null, 'submit')),
      h('div', { class: 'res-head' }, h('h1', null, t('nav.records')), total, opener, exports && exports.el), bulkResult, bulkBar, tableWrap, empty, pager)));
  // Select options, with the counts of the last answer beside them.
  const opts = (s, list, counts) => {
    const sum = counts && Object.values(counts).reduce((a, b) => a + b, 0), c = n => (counts ? ` (${num(n)})` : '');
    put(s, h('option', { value: '' }, t('all') + c(sum)), list.map(x => h('option', { value: x }, t(s === type ? 'type.' + x : 'review.' + x) + c(counts && counts[x]))));
    s.value = v(s === type ? 'type' : 'review');
  };
  // The types the user may see (the server's scope), and the one asked for.
  const types = () => Object.keys(FIELDS).filter(x => S.scope.record_types.includes(x) || v('type') === x);
  function row(r) {
    const href = '#/records/' + encodeURIComponent(r.id);
    const sel = bulk && h('td', { class: 'c-select' }, h('input', { type: 'checkbox', test: 'row-select', 'data-id': r.id, 'data-title': title(r),
      'aria-label': t('col.select', { n: title(r) }), onchange: ev => pick(ev.currentTarget) }));
    return h('tr', { test: 'record-row', 'data-id': r.id, class: 'click', onclick: ev => { if (!ev.target.closest('a, input, .c-select') && !String(getSelection())) go(href); } },
      sel, h('td', { class: 'c-title' }, h('a', { href, class: 'rtitle' }, title(r))), h('td', { class: 'nowrap c-type' }, t('type.' + r.record_type)),
      h('td', { class: 'c-place', test: 'row-place' }, communeEl(r.commune, r.commune_name), r.village && h('div', { class: 'muted', test: 'row-village' }, r.village)),
      h('td', { class: 'c-collector', test: 'row-collector', title: r.collector ? r.collector.username : null }, r.collector ? personName(r.collector) : muted('—')),
      h('td', { class: 'c-review' }, badge(r.review || 'pending', 'row-review')),
      h('td', { class: 'c-flags' }, h('div', { class: 'flags' }, r.n_conflicts > 0 && h('span', { class: 'badge warn', test: 'row-conflicts' }, tn('n.conflicts', r.n_conflicts)),
        r.n_problems > 0 && h('span', { class: 'badge bad', test: 'row-problems' }, tn('n.problems', r.n_problems)),
        r.status && r.status !== 'active' && h('span', { class: 'badge' }, t('status.' + r.status)))),
      h('td', { class: 'nowrap c-updated', test: 'row-updated' }, fmtTime(r.updated_at)));
  }
  async function update(p) {
    params = p;
    communeOptions(commune, v('commune'));
    opts(type, types()); opts(review, REVIEWS);
    for (const b of boxes) b.c.checked = v(b.name) === 'true';
    since.value = v('changed_since');
    fcount.textContent = FILTERS.filter(k => k !== 'q' && v(k)).length || '';
    if (document.activeElement !== q) q.value = v('q');
    const qs = listQuery({ q: params });
    for (const th of heads) if (th.dataset.sort) th.setAttribute('aria-sort', th.dataset.sort === sortOf() ? (orderOf() === 'asc' ? 'ascending' : 'descending') : 'none');
    if (exports) exports.update(qs);
    qs.set('limit', '50'); qs.set('offset', String((pg() - 1) * 50));
    if (ac) ac.abort();
    const mine = ac = new AbortController();
    tableWrap.classList.add('busy'); tableWrap.setAttribute('aria-busy', 'true');
    if (!tbody.firstChild) tbody.append(h('tr', { test: 'loading' }, h('td', { colspan: ncols, class: 'loadrow' }, t('loading'))));
    total.textContent = t('loading');
    let d;
    try { d = await get('/v1/records?' + qs, { reuse: ctx.reuse, signal: mine.signal }); } catch (e) { d = e; }
    if (mine !== ac || !ctx.alive()) return;
    ctx.reuse = false;
    tableWrap.classList.remove('busy'); tableWrap.removeAttribute('aria-busy');
    if (d instanceof Error) { total.textContent = ''; put(tbody); return showError(d); }
    const c = d.counts || {}, recs = d.records || [], n = d.total || 0, pages = Math.max(1, Math.ceil(n / 50)), off = d.offset || 0;
    opts(type, types(), c.type); opts(review, REVIEWS, c.review);
    for (const b of boxes) b.n.textContent = c[b.name] != null ? `(${num(c[b.name])})` : '';
    total.textContent = tn('list.total', n);
    put(tbody, recs.map(row));
    drawChoice();
    tableWrap.hidden = !recs.length && !n; empty.hidden = !tableWrap.hidden;
    info.textContent = t('page', { p: num(pg()), n: num(pages) });
    range.textContent = recs.length ? t('list.range', { a: num(off + 1), b: num(off + recs.length) }) : '';
    prev.disabled = pg() <= 1; next.disabled = pg() >= pages;
    pager.hidden = !recs.length;
    S.lastList = location.hash || '#/records';
    fillCommunes(tbody);
  }
  areas().then(() => ctx.alive() && communeOptions(commune, v('commune')), () => {});
  update(params);
  return { update };
}

// The options of a commune filter: today's communes, then (before 1 Jul 2025) each old district
// followed by its old communes, within the user's areas; `val` stays chosen.
function communeOptions(sel, val) {
  const groups = [];
  if (S.A) {
    const sc = S.scope && S.scope.communes && new Set(S.scope.communes), ok = c => !sc || sc.has(c), by = (a, b) => a.name.localeCompare(b.name, 'vi'), all = [...S.A.values()];
    const opt = (a, label) => h('option', { value: a.code }, label || a.name);
    const now = all.filter(a => a.level === 'commune' && !a.valid_to && ok(a.code)).sort(by);
    if (now.length) groups.push(h('optgroup', { label: t('list.now') }, now.map(a => opt(a))));
    const old = [];
    for (const d of all.filter(a => a.level === 'district' && a.valid_to).sort(by)) {
      const cs = all.filter(a => a.level === 'commune' && a.parent === d.code && ok(a.code)).sort(by);
      if (cs.length) old.push(opt(d, t('list.district', { n: levelName(d) })), cs.map(c => opt(c, '\u2003' + c.name + (area(c.successor) && area(c.successor).name !== c.name ? ' → ' + area(c.successor).name : ' (' + t('area.old') + ')'))));
    }
    if (old.length) groups.push(h('optgroup', { label: t('list.before') }, old));
  }
  put(sel, h('option', { value: '' }, t('list.allCommunes')), groups);
  if (val && ![...sel.options].some(o => o.value === val)) sel.append(h('option', { value: val }, area(val) ? levelName(area(val)) : val));
  sel.value = val;
}

// ---- One record
async function pRecord(ctx) {
  const main = ctx.main, path = '/v1/records/' + encodeURIComponent(ctx.m[1]);
  const hist = h('div');
  main.append(h('p', { class: 'loading muted', test: 'loading' }, t('loading')));
  let rec;
  try {
    // The area list names communes and their pre-merger status; it is needed on a direct load too.
    [rec] = await Promise.all([get(path, ctx), areas().catch(() => null)]);
  } catch (e) {
    if (ctx.alive()) put(main, h('a', { href: S.lastList, class: 'back', test: 'back' }, t('rec.back')));
    throw e;
  }
  if (!ctx.alive()) return;
  // Whether the user may review, edit and undo merges here: the server says so with the record.
  const canEdit = () => rec.may_edit === true;
  // Sends an edit; the answer is the record as it now stands.
  async function edit(body, b, ok) {
    const r = await act(b, () => api('POST', path + '/edits', body));
    if (!r || !ctx.alive()) return;
    rec = r; draw(); notice(ok || t('rec.saved')); loadHistory();
  }
  // Undoes the merge of a duplicate (this record, or one merged into it), then shows the record anew.
  async function unmerge(id, b) {
    const r = await act(b, () => api('POST', '/v1/records/' + encodeURIComponent(id) + '/unmerge'));
    if (!r || !ctx.alive()) return;
    try { rec = await get(path, { signal: ctx.signal }); } catch (e) { return showError(e); }
    if (!ctx.alive()) return;
    draw(); notice(t('rec.unmerged')); loadHistory();
  }
  function draw() {
    const ty = rec.record_type, f = rec.fields || {}, sets = rec.sets || {}, conf = rec.conflicts || [], probs = rec.problems || [];
    const refs = rec.refs || {}, absorbed = rec.absorbed || [], late = absorbed.some(a => (a.edits_after_merge || []).length > 0);
    const inConf = new Set(conf.map(c => c.field)), probF = new Set(probs.map(p => p.field));
    const names = (FIELDS[ty] || []).map(x => x[0]);
    for (const k of [...Object.keys(f), ...Object.keys(sets)]) if (!names.includes(k) && k[0] !== '$') names.push(k);
    S.titles.set(rec.id, { title: rec.title, record_type: ty });
    const rows = names.map(n => [h('dt', { class: probF.has(n) ? 'bad' : null }, flabel(ty, n)),
      h('dd', { 'data-field': n }, h('span', { test: 'field-' + n },
        n === 'commune' ? communeEl(f.commune || rec.commune, f.commune && f.commune !== rec.commune ? '' : rec.commune_name, true) : fmt(fkind(ty, n), fkind(ty, n).startsWith('set:') ? sets[n] : f[n], refs)),
        inConf.has(n) && h('button', { type: 'button', class: 'badge warn', onclick: () => document.getElementById('c-' + n).scrollIntoView({ behavior: 'smooth' }) }, t('rec.inConflict')),
        probF.has(n) && h('span', { class: 'badge bad', 'aria-hidden': 'true' }, '!'),
        canFix(ty, n) && h('button', { type: 'button', class: 'linkbtn fixbtn', test: 'correct-' + n, 'aria-label': t('rec.correctA', { f: flabel(ty, n) }),
          onclick: ev => fixer(ty, n, ev.currentTarget.closest('dd')) }, t('rec.correct')))]);
    put(main, h('div', { class: 'rec-head' },
      h('a', { href: S.lastList, class: 'back', test: 'back' }, t('rec.back')),
      h('div', { class: 'kind' }, t('type.' + ty)),
      h('h1', { test: 'record-title' }, title(rec)),
      h('div', { class: 'meta' }, communeEl(rec.commune, rec.commune_name), h('span', { class: 'sep' }, '·'),
        t('rec.updated') + ': ' + fmtTime(rec.updated_at), h('span', { class: 'sep' }, '·'), badge((rec.review && rec.review.state) || 'pending'),
        rec.status !== 'active' && h('span', { class: 'badge' }, t('status.' + rec.status)))),
    h('div', { class: 'rec-layout' },
      h('div', { class: 'rec-main' },
        SENSITIVE.has(ty) && h('div', { class: 'note', test: 'sensitive' }, t('rec.sensitive')),
        rec.status === 'deleted' && h('div', { class: 'note bad', test: 'record-deleted' }, t('rec.deleted')),
        rec.status === 'merged' && h('div', { class: 'note with-act', test: 'record-merged' }, h('span', null, t('rec.merged'), ' ', rec.merged_into && refLink(rec.merged_into)),
          canEdit() && btn(t('rec.unmerge'), 'small', 'unmerge', ev => unmerge(rec.id, ev.currentTarget))),
        conf.length > 0 && h('section', { class: 'card conflicts', test: 'conflicts' },
          h('h2', null, t('rec.conflicts'), h('span', { class: 'badge warn' }, num(conf.length))),
          h('p', { class: 'muted' }, t('rec.conflictsHelp')), conf.map(c => conflict(ty, f, c))),
        probs.length > 0 && h('section', { class: 'card', test: 'problems' }, h('h2', null, t('rec.problems'), h('span', { class: 'badge bad' }, num(probs.length))),
          h('ul', { class: 'problems' }, probs.map(p => h('li', { test: 'problem-' + p.field }, h('strong', null, flabel(ty, p.field)), ': ',
            has('p.' + p.code) ? t('p.' + p.code) : p.code, p.message && muted(` (${p.message})`))))),
        late && absorbedCard(ty, f, absorbed, true),
        h('section', { class: 'card rec-fields' }, h('h2', null, t('rec.fields')), h('dl', { class: 'fields', test: 'fields' }, rows)),
        absorbed.length > 0 && !late && absorbedCard(ty, f, absorbed, false),
        h('section', { class: 'card' }, h('h2', null, t('rec.history')), hist)),
      h('aside', { class: 'rec-side' }, reviewCard(ty), recordBoxes(rec, ctx),
        h('section', { class: 'card small' }, h('dl', { class: 'meta-dl' }, h('dt', null, t('rec.id')), h('dd', { class: 'mono', test: 'record-id' }, rec.id))))));
    document.title = title(rec) + ' · ' + t('app');
    fillRefs(main, ctx);
  }
  // The duplicates merged into this record, with the edits they received after the merge (a phone
  // that had not synced): each may be taken over here. Above the fields when there are such edits.
  function absorbedCard(ty, f, absorbed, late) {
    const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    const lateEdit = e => h('li', { class: 'late-edit', test: 'late-' + e.field, 'data-field': e.field },
      h('span', null, h('strong', null, flabel(ty, e.field)), ': ', h('span', { class: 'was' }, fmt(fkind(ty, e.field), e.at_merge)), ' → ', h('span', { class: 'now' }, fmt(fkind(ty, e.field), e.now))),
      same(f[e.field], e.now) ? h('span', { class: 'tag', test: 'late-has' }, t('rec.hasIt')) : canEdit() && e.field[0] !== '$' && btn(t('rec.take'), 'small', 'take-late-' + e.field,
        ev => edit(e.now == null ? { edit: 'clear_field', field: e.field } : { edit: 'set_field', field: e.field, value: e.now }, ev.currentTarget)));
    return h('section', { class: 'card absorbed' + (late ? ' late' : ''), test: 'absorbed' },
      h('h2', null, t('rec.absorbed'), h('span', { class: 'badge' }, num(absorbed.length))), h('p', { class: 'muted' }, t('rec.absorbedHelp')),
      h('ul', { class: 'absorbed-list' }, absorbed.map(a => {
        S.titles.set(a.id, { title: a.title, record_type: ty });
        const edits = a.edits_after_merge || [];
        return h('li', { test: 'absorbed-item', 'data-id': a.id }, h('div', { class: 'arow' },
          h('a', { href: '#/records/' + encodeURIComponent(a.id), class: 'rtitle' }, title({ record_type: ty, title: a.title })),
          canEdit() && btn(t('rec.unmerge'), 'small ghost', 'unmerge-absorbed', ev => unmerge(a.id, ev.currentTarget))),
        edits.length > 0 && h('div', { class: 'late-box', test: 'edits-after-merge' }, h('h3', null, t('rec.late'), h('span', { class: 'badge warn' }, num(edits.length))),
          h('p', null, t('rec.lateHelp')), h('ul', null, edits.map(lateEdit))));
      })));
  }
  // One field in conflict: each value with who wrote it, in the server's order.
  function conflict(ty, f, c) {
    const kind = fkind(ty, c.field), editable = canEdit() && c.field[0] !== '$';
    return h('div', { class: 'conflict', id: 'c-' + c.field, test: 'conflict-' + c.field }, h('h3', null, flabel(ty, c.field)),
      h('ul', { class: 'cands' }, (c.values || []).map((x, i) => h('li', { class: 'cand', test: 'candidate-' + c.field },
        h('div', { class: 'cval' }, fmt(kind, x.value), JSON.stringify(x.value) === JSON.stringify(f[c.field]) && h('span', { class: 'tag' }, t('rec.shown'))),
        h('div', { class: 'who', test: 'author' }, who(x.author)),
        editable && h('button', { type: 'button', class: 'btn', test: 'pick-' + c.field, 'data-index': i, onclick: ev => edit({ edit: 'set_field', field: c.field, value: x.value }, ev.currentTarget) }, t('rec.pick'))))),
      editable ? customValue(c.field, kind) : canEdit() && h('p', { class: 'muted' }, t('rec.noConflictEdit')));
  }
  function customValue(name, kind) {
    const ctl = inputFor(kind, 'custom-' + name), err = h('p', { class: 'ferr', hidden: true }, t('err.value'));
    const b = btn(t('save'), 'primary', 'save-' + name, null, 'submit');
    ctl.id = 'i' + ++uid;
    return h('form', { class: 'custom', onsubmit: ev => {
      ev.preventDefault();
      const val = valueOf(kind, ctl.value);
      err.hidden = val !== null;
      if (val === null) ctl.focus(); else edit({ edit: 'set_field', field: name, value: val }, b);
    } }, h('label', { for: ctl.id }, t('rec.other')), h('div', { class: 'row' }, ctl, b), err);
  }
  // A correction of any scalar field of an active record, in place: the value as the server
  // validates it (its problems named in the reader's language), or empty to clear it.
  function canFix(ty, n) {
    return canEdit() && rec.status === 'active' && n[0] !== '$' && !fkind(ty, n).startsWith('set:') && (FIELDS[ty] || []).some(x => x[0] === n);
  }
  function fixer(ty, n, dd) {
    if (dd.querySelector('form.fix')) return dd.querySelector('form.fix input, form.fix select, form.fix textarea').focus();
    const kind = fkind(ty, n), cur = (rec.fields || {})[n];
    const ctl = inputFor(kind, 'fix-input-' + n);
    ctl.id = 'i' + ++uid;
    if (cur != null) ctl.value = String(cur);
    const err = h('p', { class: 'ferr', test: 'fix-error', role: 'alert', hidden: true });
    const save = btn(t('save'), 'primary small', 'fix-save-' + n, null, 'submit');
    const form = h('form', { class: 'custom fix', test: 'fix-' + n, onsubmit: async ev => {
      ev.preventDefault();
      const val = valueOf(kind, ctl.value);
      const body = val === null ? { edit: 'clear_field', field: n } : { edit: 'set_field', field: n, value: val };
      save.disabled = true; err.hidden = true; ctl.removeAttribute('aria-invalid'); clearError();
      try {
        const r = await api('POST', path + '/edits', body);
        if (!ctx.alive()) return;
        rec = r; draw(); notice(t('rec.corrected', { f: flabel(ty, n) })); loadHistory();
      } catch (e) {
        if (!e.problems || !e.problems.length) return showError(e);
        put(err, h('strong', null, t('rec.invalid')), ': ', e.problems.map((p, i) => [i ? '; ' : '', flabel(ty, p.field), ' — ',
          has('p.' + p.code) ? t('p.' + p.code) : p.code, p.message ? muted(' (' + p.message + ')') : '']));
        err.hidden = false; ctl.setAttribute('aria-invalid', 'true'); ctl.focus();
      } finally { save.disabled = false; }
    } }, h('label', { for: ctl.id }, t('rec.correctA', { f: flabel(ty, n) })), h('div', { class: 'row' }, ctl, save,
      btn(t('cancel'), 'ghost small', 'fix-cancel-' + n, () => form.remove())), err, h('p', { class: 'hint' }, t('rec.correctHint')));
    dd.append(form);
    ctl.focus();
  }
  function reviewCard(ty) {
    const rv = rec.review || {}, st = rv.state || 'pending';
    const comment = h('textarea', { test: 'review-comment', rows: 3, maxlength: 2000 });
    const err = h('p', { class: 'ferr', test: 'review-error', hidden: true }, t('rec.needComment'));
    const say = () => comment.value.trim();
    return h('section', { class: 'card review', test: 'review' }, h('h2', null, t('rec.review')),
      h('div', { class: 'state' }, badge(st, 'review-state')),
      rv.comment && h('div', { class: 'comment' }, h('div', { class: 'lbl' }, t('rec.lastComment')), h('p', { test: 'review-comment-text' }, rv.comment)),
      st === 'changed' && h('div', { class: 'changed', test: 'changed' }, h('h3', null, t('rec.changed')), h('p', null, t('rec.changedHelp')),
        h('ul', { test: 'changed-fields' }, (rv.changed_fields || []).map(c => h('li', { 'data-field': c.field }, h('strong', null, flabel(ty, c.field)), ': ',
          h('span', { class: 'was' }, fmt(fkind(ty, c.field), c.approved)), ' → ', fmt(fkind(ty, c.field), c.now))))),
      rec.status === 'merged' ? h('p', { class: 'muted', test: 'review-merged' }, t('rec.reviewKept')) : canEdit() ? [
        (rec.conflicts || []).length > 0 && h('p', { class: 'note warn small' }, t('rec.resolveFirst')),
        field(t('rec.comment'), comment, t('rec.commentHint')), err,
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'btn ok', test: 'approve', disabled: st === 'approved', onclick: ev => edit(say() ? { edit: 'review', state: 'approved', comment: say() } : { edit: 'review', state: 'approved' }, ev.currentTarget, t('rec.approvedOk')) }, t('rec.approve')),
          btn(t('rec.return'), 'danger', 'return', ev => {
            err.hidden = !!say();
            if (say()) edit({ edit: 'review', state: 'returned', comment: say() }, ev.currentTarget, t('rec.returnedOk'));
            else { comment.setAttribute('aria-invalid', 'true'); comment.focus(); }
          })),
        st !== 'pending' && h('button', { type: 'button', class: 'linkbtn', test: 'review-reset', onclick: ev => edit({ edit: 'review', state: 'pending' }, ev.currentTarget) }, t('rec.reset')),
      ] : h('p', { class: 'muted' }, t('rec.readonly')));
  }
  // The history, newest first (the server lists oldest first; times are to the second, so ties keep
  // its order reversed); the 30 latest changes, the rest on request.
  async function loadHistory() {
    put(hist, muted(t('loading')));
    let d;
    try { d = await get(path + '/history', ctx); } catch (e) {
      if (!e.aborted) put(hist, h('p', { class: 'muted' }, t('err.' + (has('err.' + e.code) ? e.code : 'internal'), { s: e.retry || 30 })), btn(t('retry'), 'small', 'history-retry', loadHistory));
      return;
    }
    if (!ctx.alive()) return;
    const at = c => Date.parse(c.received_at) || 0;
    const list = (d.changes || []).map((c, i) => [c, i]).sort((a, b) => at(b[0]) - at(a[0]) || b[1] - a[1]).map(x => x[0]);
    if (!list.length) return put(hist, h('p', { class: 'muted', test: 'history' }, t('h.none')));
    const tbody = h('tbody');
    const show = n => put(tbody, list.slice(0, n).map(c => h('tr', { test: 'history-row', 'data-kind': c.kind }, h('td', { class: 'nowrap' }, fmtTime(c.received_at),
      (c.made_at || (c.author || {}).device_kind !== 'browser') && h('div', { class: 'muted small', test: 'phone-time' }, c.made_at ? t('h.phoneTime', { t: fmtTime(c.made_at) }) : t('h.noPhoneTime'))),
      td(person(c.author)), td((c.author && c.author.device_name) || t('dev.unknown')),
      td(h('ul', { class: 'ops' }, describe(rec.record_type, c.ops || [], c.kind))))));
    show(30);
    const more = list.length > 30 && btn(t('h.more', { n: num(list.length) }), '', 'history-more', () => { show(list.length); more.remove(); fillRefs(hist, ctx); });
    put(hist, table('history', ['h.time', 'h.who', 'h.device', 'h.what'], tbody), more);
    fillRefs(hist, ctx);
  }
  draw();
  loadHistory();
}
// One change in words: what kind of change it was (the server says), then each field it wrote as
// old → new; members added to or removed from a set are listed together.
function describe(ty, ops, kind) {
  const out = [], sets = new Map(), create = kind === 'create' || ops.some(o => o.key === '$type');
  const li = (...k) => out.push(h('li', null, ...k)), b = s => h('strong', null, s);
  const val = (k, v) => (v == null ? h('em', { class: 'muted' }, t('cleared')) : fmt(fkind(ty, k), v));
  if (create) li(b(t('h.create')));
  const order = (FIELDS[ty] || []).map(x => x[0]), pos = k => { const i = order.indexOf(k.split('/')[0]); return i < 0 ? 99 : i; };
  const comment = (ops.find(o => o.key === '$review_comment') || {}).value, same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  for (const { key, value: v, old } of [...ops].sort((a, b) => (a.key[0] === '$') - (b.key[0] === '$') || pos(a.key) - pos(b.key))) {
    const i = key.indexOf('/'), base = i < 0 ? key : key.slice(0, i), member = key.slice(i + 1);
    if (key === '$deleted') { if (v === true) li(b(t('h.delete'))); else if (!create) li(b(t('h.restore'))); }
    else if (key === '$review') li(b(t(v === 'approved' ? 'h.approve' : v === 'returned' ? 'h.return' : 'h.pending')), comment ? (v === 'returned' ? ': “' + comment + '”' : ' — ' + t('h.comment', { c: comment })) : '');
    else if (key === '$review_comment') { if (!ops.some(o => o.key === '$review')) li(v ? t('h.comment', { c: v }) : t('h.nocomment')); }
    else if (key === '$merged_into') li(b(t(v ? 'h.mergedInto' : 'h.unmerged')), ' ', v || old ? refLink(String(v || old)) : '—');
    else if (base === '$absorbed') li(b(t(v ? 'h.absorbed' : 'h.released')), ' ', refLink(member), ' ', t(v ? 'h.intoThis' : 'h.fromThis'));
    else if (key[0] === '$') continue;
    else if (i > 0 && fkind(ty, base).startsWith('set:')) {
      const k = base + (v == null || v === false ? '-' : '+');
      if (!sets.has(k)) sets.set(k, []);
      sets.get(k).push(member);
    } else li({ correction: b(t('h.correction') + ': '), absorb: b(t('h.took') + ': ') }[kind] || '', h('span', { class: 'fl' }, flabel(ty, key)), ' ',
      create || old == null || same(old, v) ? '' : [h('span', { class: 'was', test: 'old' }, val(key, old)), ' → '], h('span', { class: 'now', test: 'new' }, val(key, v)));
  }
  for (const [k, ms] of sets) {
    const base = k.slice(0, -1), kind = fkind(ty, base).slice(4);
    li(h('span', { class: 'fl' }, flabel(ty, base)), ': ', t(k.endsWith('+') ? 'h.add' : 'h.remove'), ' ', ms.map((m, j) => [j ? ', ' : '', fmt(kind, m)]));
  }
  return out;
}
// An input suited to a field's kind, and its value in the API's terms (null: nothing entered).
function inputFor(kind, test) {
  const choice = list => h('select', { test }, h('option', { value: '' }, t('choose')), list.map(([v, l]) => h('option', { value: v }, l)));
  if (kind.startsWith('code:')) { const s = kind.slice(5); return choice((CODES[s] || []).map(c => [c, t(s + '.' + c)])); }
  if (kind === 'bool') return choice([['true', t('yes')], ['false', t('no')]]);
  if (kind === 'eth') return choice([...ETH]);
  if (kind === 'commune' && S.A) return choice([...S.A.values()].filter(a => a.level === 'commune').map(a => [a.code, a.name + (a.valid_to ? ' (' + t('area.old') + ')' : '')]));
  if (kind === 'long') return h('textarea', { test, rows: 3 });
  return h('input', { test, type: kind === 'int' ? 'number' : kind === 'date' ? 'date' : 'text', placeholder: kind === 'dateyear' ? 'YYYY / YYYY-MM-DD' : null });
}
function valueOf(kind, s) {
  s = s.trim();
  if (!s) return null;
  if (kind === 'bool') return s === 'true';
  if (kind === 'int') return /^-?\d+$/.test(s) ? parseInt(s, 10) : null;
  return s;
}

// ---- Admin: accounts
// Areas picked by name (admin.js): {value(), clear(), el}.
const areaInput = (codes, test) => KIT.areaPicker(codes, test);
async function pUsers(ctx) {
  const me = S.user, tbody = h('tbody', null, msgRow(7, t('loading')));
  let users = [];
  const path = u => '/v1/admin/users/' + encodeURIComponent(u.username);
  const draw = () => put(tbody, users.length ? users.map(row) : msgRow(7, t('u.none')));
  // The full name and phone inputs of an account, filled with `u`'s.
  const contact = (u, test) => {
    const name = h('input', { test: test + '-full-name', maxlength: 120, autocomplete: 'off', value: (u && u.full_name) || '' });
    const phone = h('input', { type: 'tel', test: test + '-phone', maxlength: 16, pattern: '\\+?[0-9]{8,15}', autocomplete: 'off', value: (u && u.phone) || '' });
    return { body: () => ({ full_name: name.value.trim(), phone: phone.value.trim() }), el: [field(t('u.fullName'), name), field(t('u.phone'), phone, t('u.phoneHint'))] };
  };
  const upd = u => { users = users.map(x => (x.username === u.username ? u : x)); draw(); };
  const grantBox = (checked, test) => me.can_grant_sensitive && h('input', { type: 'checkbox', checked, test });
  function row(u) {
    const self = u.username === me.username;
    const tr = h('tr', { test: 'user-row', 'data-username': u.username, class: u.disabled ? 'dim' : null },
      h('td', { test: 'user-name' }, h('strong', null, personName(u)), u.full_name && muted(' ' + u.username), self && muted(' ' + t('u.you'))),
      h('td', { class: 'nowrap', test: 'user-phone' }, u.phone || '—'), td(t('role.' + u.role)), td(areaNames(u.areas) || '—'),
      td(t(u.sensitive_access ? 'yes' : 'no')), td(h('span', { class: 'badge ' + (u.disabled ? '' : 'good') }, t(u.disabled ? 'u.disabled' : 'u.active'))),
      h('td', { class: 'acts' }, btn(t('u.edit'), 'small', 'user-edit', () => editRow(u, tr)),
        !self && btn(t(u.disabled ? 'u.enable' : 'u.disable'), 'small' + (u.disabled ? '' : ' danger-o'), 'user-toggle', ev => act(ev.currentTarget, async () => {
          upd(await api('PATCH', path(u), { disabled: !u.disabled }));
          notice(t('u.saved', { u: u.username }));
        }))));
    return tr;
  }
  // The editor under an account's row: areas and access, and a new password.
  function editRow(u, tr) {
    const open = tr.nextElementSibling && tr.nextElementSibling.classList.contains('edit');
    tbody.querySelectorAll('tr.edit').forEach(r => r.remove());
    if (open) return;
    const ai = areaInput(u.areas, 'user-areas'), who = contact(u, 'user'), sens = h('input', { type: 'checkbox', checked: !!u.sensitive_access, test: 'user-sensitive' });
    const grant = grantBox(!!u.can_grant_sensitive, 'user-grant'), save = btn(t('save'), 'primary', 'user-save', null, 'submit');
    const pw = h('input', { type: 'password', autocomplete: 'new-password', minlength: 10, test: 'user-password' });
    const pwBtn = btn(t('u.resetPw'), '', 'user-password-save', null, 'submit');
    tr.after(h('tr', { class: 'edit', test: 'user-edit-row' }, h('td', { colspan: 7 }, h('div', { class: 'edit-grid' },
      h('form', { onsubmit: ev => { ev.preventDefault(); act(save, async () => {
        const body = { ...who.body(), areas: ai.value(), sensitive_access: sens.checked };
        if (grant) body.can_grant_sensitive = grant.checked;
        upd(await api('PATCH', path(u), body));
        notice(t('u.saved', { u: u.username }));
      }); } }, h('h3', null, t('u.editing', { u: u.username })), who.el, ai.el, check(sens, t('u.sensitive')), grant && check(grant, t('u.grant')),
      h('div', { class: 'actions' }, save, btn(t('close'), 'ghost', null, () => editRow(u, tr)))),
      h('form', { onsubmit: ev => { ev.preventDefault(); act(pwBtn, async () => {
        await api('POST', path(u) + '/password', { password: pw.value });
        pw.value = ''; notice(t('u.pwSet', { u: u.username }));
      }); } }, h('h3', null, t('u.resetPw')), field(t('u.newPw'), pw, t('u.pwHint')), pwBtn)))));
  }
  function createForm() {
    const name = h('input', { test: 'new-username', autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false' });
    const pw = h('input', { type: 'password', autocomplete: 'new-password', minlength: 10, test: 'new-password' });
    const role = h('select', { test: 'new-role' }, ['collector', 'supervisor', 'admin'].map(r => h('option', { value: r }, t('role.' + r))));
    const ai = areaInput([], 'new-areas'), who = contact(null, 'new'), sens = h('input', { type: 'checkbox', test: 'new-sensitive' }), grant = grantBox(false, 'new-grant');
    const b = btn(t('u.createGo'), 'primary', 'new-submit', null, 'submit');
    const form = h('form', { class: 'card', test: 'user-create', onsubmit: ev => { ev.preventDefault(); act(b, async () => {
      const body = { ...who.body(), username: name.value.trim(), password: pw.value, role: role.value, areas: ai.value(), sensitive_access: sens.checked };
      if (grant) body.can_grant_sensitive = grant.checked;
      const u = await api('POST', '/v1/admin/users', body).catch(e => { if (e.code !== 'conflict') throw e; showError(e, t('u.taken')); name.focus(); });
      if (!u) return;
      users = [...users.filter(x => x.username !== u.username), u]; draw();
      notice(t('u.created', { u: u.username }));
      form.reset(); ai.clear();
    }); } },
    h('h2', null, t('u.create')), field(t('u.username'), name), ...who.el, field(t('u.password'), pw, t('u.pwHint')), field(t('u.role'), role), ai.el,
    check(sens, t('u.sensitive')), grant && check(grant, t('u.grant')), h('div', { class: 'actions' }, b));
    return form;
  }
  ctx.main.append(h('div', { class: 'admin-layout' }, h('section', null, h('h1', null, t('nav.users')),
    table('users-table', ['u.fullName', 'u.phone', 'u.role', 'u.areas', 'u.sensitive', 'u.state', ''], tbody)), createForm()));
  users = await get('/v1/admin/users', ctx);
  await areas().catch(() => null);
  if (ctx.alive()) draw();
}

// ---- Start
(async () => {
  document.documentElement.lang = S.lang;
  window.addEventListener('hashchange', () => render());
  try {
    const s = await api('GET', '/v1/session', undefined, { login: true });
    if (s && s.user && s.user.role !== 'collector') { S.user = s.user; S.csrf = s.csrf_token; }
  } catch (e) {
    if (e.status !== 401) { render(); return showError(e); }
  }
  render();
})();
})();
