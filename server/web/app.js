'use strict';
/* fieldsync: the supervisors' page. Vanilla ES2020, no build step, no dependencies. Served under
   a strict CSP (default-src 'self'): no inline script or style attribute, no eval. Pages are
   entries of ROUTES; every visible string is a key of L (vi, en); the JSON API is
   server/src/http/openapi.json. Stable data-test attributes are for browser tests. */
(() => {

// ---- Strings ----------------------------------------------------------------------------
const L = {
vi: {
  app: 'fieldsync · Dự án 8', loading: 'Đang tải…', saving: 'Đang lưu…', close: 'Đóng', retry: 'Thử lại',
  save: 'Lưu', cancel: 'Huỷ', yes: 'Có', no: 'Không', all: 'Tất cả', empty: 'Chưa nhập', choose: '— Chọn —',
  'nav.records': 'Hồ sơ', 'nav.users': 'Tài khoản', 'nav.devices': 'Thiết bị', 'nav.audit': 'Nhật ký',
  'nav.main': 'Điều hướng chính', logout: 'Đăng xuất', lang: 'Ngôn ngữ',
  'role.collector': 'Cán bộ thu thập', 'role.supervisor': 'Giám sát', 'role.admin': 'Quản trị',
  'login.title': 'Đăng nhập', 'login.sub': 'Trang xét duyệt hồ sơ dành cho cán bộ giám sát và quản trị viên.',
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
  'type.household': 'Hộ gia đình', 'type.person': 'Người thụ hưởng', 'type.group': 'Mô hình/nhóm',
  'type.activity': 'Hoạt động', 'type.support_case': 'Vụ việc hỗ trợ',
  'review.pending': 'Chờ duyệt', 'review.approved': 'Đã duyệt', 'review.returned': 'Trả lại',
  'review.changed': 'Đã sửa sau khi duyệt', 'status.deleted': 'Đã xoá', 'status.merged': 'Đã gộp',
  'list.filters': 'Bộ lọc', 'list.commune': 'Xã', 'list.allCommunes': 'Tất cả xã trong địa bàn',
  'list.now': 'Xã hiện nay (từ 01/7/2025)', 'list.before': 'Trước 01/7/2025',
  'list.district': '{n} (cả huyện)', 'list.type': 'Loại hồ sơ', 'list.review': 'Xét duyệt',
  'list.only': 'Chỉ hiện hồ sơ', 'list.conflicts': 'Có xung đột', 'list.problems': 'Có lỗi dữ liệu',
  'list.deleted': 'Đã xoá', 'list.since': 'Thay đổi từ ngày', 'list.clear': 'Xoá bộ lọc',
  'list.q': 'Tìm kiếm', 'list.qph': 'Tìm theo tên, CCCD, số điện thoại…', 'list.qgo': 'Tìm',
  'list.qhint': 'Gõ có dấu hay không dấu đều được.', 'list.total': '{n} hồ sơ', 'list.range': 'Hiển thị {a}–{b}',
  'list.empty': 'Không có hồ sơ nào khớp với bộ lọc.', 'list.emptyHint': 'Hãy bỏ bớt điều kiện lọc hoặc đổi từ khoá tìm kiếm.',
  'col.title': 'Hồ sơ', 'col.type': 'Loại', 'col.commune': 'Xã', 'col.review': 'Xét duyệt',
  'col.flags': 'Cần xử lý', 'col.updated': 'Cập nhật lúc', page: 'Trang {p}/{n}',
  prev: '‹ Trang trước', next: 'Trang sau ›', 'n.conflicts': '{n} xung đột', 'n.problems': '{n} lỗi dữ liệu',
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
  'rec.sensitive': 'Hồ sơ nhạy cảm: chỉ người được cấp quyền mới xem được, và mỗi lần xem đều được ghi vào nhật ký.',
  'rec.deleted': 'Hồ sơ này đã bị xoá.', 'rec.merged': 'Hồ sơ này trùng và đã được gộp vào hồ sơ khác:',
  'rec.open': 'Mở hồ sơ', 'rec.gone': 'hồ sơ không xem được', 'rec.saved': 'Đã lưu.',
  'rec.approvedOk': 'Đã duyệt hồ sơ.', 'rec.returnedOk': 'Đã trả lại hồ sơ cho cán bộ thu thập.',
  'rec.id': 'Mã hồ sơ', 'rec.updated': 'Cập nhật lần cuối', 'rec.lastComment': 'Nhận xét',
  'rec.noConflictEdit': 'Xung đột này được xử lý trên điện thoại.',
  cleared: 'đã xoá giá trị', 'who.unknown': 'Không rõ người nhập', 'dev.unknown': 'không rõ thiết bị',
  'h.time': 'Thời gian nhận', 'h.who': 'Người thực hiện', 'h.device': 'Thiết bị', 'h.what': 'Nội dung thay đổi',
  'h.create': 'Tạo hồ sơ', 'h.delete': 'Xoá hồ sơ', 'h.restore': 'Khôi phục hồ sơ', 'h.approved': 'Duyệt hồ sơ',
  'h.returned': 'Trả lại hồ sơ', 'h.pending': 'Đưa về chờ duyệt', 'h.comment': 'Nhận xét: “{c}”',
  'h.nocomment': 'Xoá nhận xét', 'h.mergedInto': 'Gộp vào hồ sơ', 'h.absorbed': 'Nhận gộp hồ sơ trùng',
  'h.add': 'thêm', 'h.remove': 'bỏ', 'h.none': 'Chưa có thay đổi nào.', 'h.more': 'Xem tất cả {n} lần thay đổi',
  'p.required': 'Bắt buộc nhưng còn trống', 'p.not_allowed': 'Giá trị không có trong danh mục',
  'p.invalid_format': 'Sai định dạng', 'p.out_of_range': 'Ngoài khoảng cho phép', 'p.too_long': 'Quá dài',
  'p.wrong_type': 'Sai kiểu dữ liệu', 'p.unknown_field': 'Trường không có trong mẫu hồ sơ',
  'p.not_a_set': 'Trường này không phải danh sách', 'p.not_a_scalar': 'Trường này là danh sách',
  'u.username': 'Tên đăng nhập', 'u.role': 'Vai trò', 'u.areas': 'Địa bàn', 'u.sensitive': 'Xem vụ việc nhạy cảm',
  'u.grant': 'Được cấp quyền xem vụ việc nhạy cảm cho người khác', 'u.state': 'Trạng thái',
  'u.active': 'Đang hoạt động', 'u.disabled': 'Đã khoá', 'u.edit': 'Sửa', 'u.disable': 'Khoá', 'u.enable': 'Mở khoá',
  'u.create': 'Tạo tài khoản mới', 'u.password': 'Mật khẩu', 'u.pwHint': 'Ít nhất 10 ký tự.',
  'u.areasHint': 'Mã địa bàn, cách nhau bằng dấu phẩy, ví dụ: 62.610, 51.102', 'u.addArea': 'Thêm địa bàn',
  'u.addAreaPh': 'Gõ tên xã, huyện…', 'u.newPw': 'Mật khẩu mới', 'u.resetPw': 'Đặt lại mật khẩu',
  'u.created': 'Đã tạo tài khoản {u}.', 'u.saved': 'Đã lưu tài khoản {u}.', 'u.pwSet': 'Đã đặt mật khẩu mới cho {u}.',
  'u.allAreas': 'Toàn bộ', 'u.unknownArea': 'Mã không có trong danh mục: {c}', 'u.none': 'Chưa có tài khoản nào.',
  'u.taken': 'Tên đăng nhập này đã có.', 'u.you': '(bạn)', 'u.editing': 'Sửa tài khoản {u}',
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
  'f.commune': 'Xã', 'f.village': 'Thôn/làng', 'f.head_name': 'Họ tên chủ hộ', 'f.head_person_id': 'Hồ sơ chủ hộ',
  'f.ethnicity': 'Dân tộc', 'f.poverty': 'Hộ nghèo/cận nghèo', 'f.especially_difficult_village': 'Thôn đặc biệt khó khăn',
  'f.address': 'Địa chỉ', 'f.household_id': 'Hộ gia đình', 'f.full_name': 'Họ và tên', 'f.sex': 'Giới tính',
  'f.birth': 'Ngày/năm sinh', 'f.national_id': 'Số CCCD', 'f.disability': 'Khuyết tật', 'f.phone': 'Số điện thoại',
  'f.group.kind': 'Loại mô hình', 'f.name': 'Tên mô hình/nhóm', 'f.established': 'Ngày thành lập', 'f.gals': 'Áp dụng GALS',
  'f.formal_finance_link': 'Liên kết tài chính chính thức', 'f.trusted_address_status': 'Địa chỉ tin cậy: củng cố hay mới',
  'f.model_phase': 'Giai đoạn mô hình', 'f.uses_digital_technology': 'Ứng dụng công nghệ 4.0', 'f.members': 'Thành viên',
  'f.activity.kind': 'Loại hoạt động', 'f.date': 'Ngày', 'f.place': 'Địa điểm', 'f.group_id': 'Mô hình/nhóm tổ chức',
  'f.topic': 'Chủ đề', 'f.counselling_topic': 'Nội dung tư vấn', 'f.attendees': 'Người tham dự',
  'f.participants': 'Số người tham dự', 'f.opinions_raised': 'Số ý kiến nêu', 'f.opinions_answered': 'Số ý kiến được trả lời',
  'f.person_id': 'Người được hỗ trợ', 'f.case_kind': 'Loại vụ việc', 'f.opened': 'Ngày tiếp nhận', 'f.status': 'Tình trạng vụ việc',
  'f.support': 'Hình thức hỗ trợ', 'f.trusted_address_id': 'Địa chỉ tin cậy', 'f.case_notes': 'Ghi chú', 'f.$deleted': 'Đã xoá',
  'poverty.poor': 'Hộ nghèo', 'poverty.near_poor': 'Hộ cận nghèo', 'poverty.none': 'Không thuộc hộ nghèo, cận nghèo',
  'sex.female': 'Nữ', 'sex.male': 'Nam',
  'disability.none': 'Không khuyết tật', 'disability.mild': 'Khuyết tật nhẹ', 'disability.severe': 'Khuyết tật nặng',
  'disability.especially_severe': 'Khuyết tật đặc biệt nặng',
  'gk.communication_team': 'Tổ truyền thông cộng đồng', 'gk.savings_loan_group': 'Tổ tiết kiệm vay vốn thôn bản',
  'gk.livelihood_group': 'Tổ/nhóm sinh kế', 'gk.cooperative': 'Hợp tác xã', 'gk.trusted_address': 'Địa chỉ tin cậy',
  'gk.children_club': 'CLB Thủ lĩnh của sự thay đổi', 'gk.victim_livelihood_model': 'Mô hình sinh kế hỗ trợ nạn nhân',
  'tas.existing': 'Củng cố (đã có)', 'tas.new': 'Thành lập mới', 'phase.pilot': 'Thí điểm', 'phase.replicated': 'Nhân rộng',
  'ak.meeting': 'Họp, sinh hoạt', 'ak.policy_dialogue': 'Đối thoại chính sách', 'ak.training': 'Tập huấn', 'ak.counselling': 'Tư vấn',
  'ct.antenatal': 'Chăm sóc trước sinh', 'ct.safe_delivery': 'Sinh đẻ an toàn', 'ct.postnatal': 'Chăm sóc sau sinh',
  'ct.child_health': 'Chăm sóc sức khoẻ trẻ em', 'ct.gender_equality': 'Bình đẳng giới',
  'ct.violence_prevention': 'Phòng, chống bạo lực', 'ct.other': 'Khác',
  'ck.domestic_violence': 'Bạo lực gia đình', 'ck.trafficking': 'Mua bán người', 'ck.sexual_abuse': 'Xâm hại tình dục',
  'cs.open': 'Đang xử lý', 'cs.supported': 'Đã hỗ trợ', 'cs.closed': 'Đã kết thúc',
  'sup.essentials_travel': 'Nhu yếu phẩm, chi phí đi lại', 'sup.medical': 'Hỗ trợ y tế', 'sup.psychological': 'Hỗ trợ tâm lý',
  'sup.legal_aid': 'Trợ giúp pháp lý', 'sup.schooling_vocational': 'Học văn hoá, học nghề', 'sup.hardship_allowance': 'Trợ cấp khó khăn',
  'sup.loan': 'Vay vốn', 'sup.referral': 'Giới thiệu, chuyển gửi', 'sup.temporary_shelter': 'Tạm lánh',
},
en: {
  app: 'fieldsync · Project 8', loading: 'Loading…', saving: 'Saving…', close: 'Close', retry: 'Try again',
  save: 'Save', cancel: 'Cancel', yes: 'Yes', no: 'No', all: 'All', empty: 'Not entered', choose: '— Choose —',
  'nav.records': 'Records', 'nav.users': 'Accounts', 'nav.devices': 'Devices', 'nav.audit': 'Audit log',
  'nav.main': 'Main navigation', logout: 'Log out', lang: 'Language',
  'role.collector': 'Collector', 'role.supervisor': 'Supervisor', 'role.admin': 'Administrator',
  'login.title': 'Log in', 'login.sub': 'Record review for supervisors and administrators.',
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
  'type.household': 'Household', 'type.person': 'Beneficiary', 'type.group': 'Group/model',
  'type.activity': 'Activity', 'type.support_case': 'Support case',
  'review.pending': 'Pending', 'review.approved': 'Approved', 'review.returned': 'Returned',
  'review.changed': 'Changed after approval', 'status.deleted': 'Deleted', 'status.merged': 'Merged',
  'list.filters': 'Filters', 'list.commune': 'Commune', 'list.allCommunes': 'All communes in your area',
  'list.now': 'Current communes (from 1 Jul 2025)', 'list.before': 'Before 1 Jul 2025',
  'list.district': '{n} (whole district)', 'list.type': 'Record type', 'list.review': 'Review',
  'list.only': 'Only records', 'list.conflicts': 'With conflicts', 'list.problems': 'With data problems',
  'list.deleted': 'Deleted', 'list.since': 'Changed since', 'list.clear': 'Clear filters',
  'list.q': 'Search', 'list.qph': 'Search by name, ID card, phone…', 'list.qgo': 'Search',
  'list.qhint': 'Accents do not matter.', 'list.total': '{n} records', 'list.range': 'Showing {a}–{b}',
  'list.empty': 'No records match the filters.', 'list.emptyHint': 'Remove some filters or change the search words.',
  'col.title': 'Record', 'col.type': 'Type', 'col.commune': 'Commune', 'col.review': 'Review',
  'col.flags': 'To resolve', 'col.updated': 'Updated', page: 'Page {p}/{n}',
  prev: '‹ Previous', next: 'Next ›', 'n.conflicts': '{n} conflicts', 'n.problems': '{n} problems',
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
  'rec.sensitive': 'Sensitive record: only people with permission can see it, and every view is logged.',
  'rec.deleted': 'This record was deleted.', 'rec.merged': 'This record was a duplicate and was merged into:',
  'rec.open': 'Open record', 'rec.gone': 'record not available', 'rec.saved': 'Saved.',
  'rec.approvedOk': 'Record approved.', 'rec.returnedOk': 'Record returned to the collector.',
  'rec.id': 'Record id', 'rec.updated': 'Last updated', 'rec.lastComment': 'Comment',
  'rec.noConflictEdit': 'This conflict is resolved on the phone.',
  cleared: 'value cleared', 'who.unknown': 'Unknown person', 'dev.unknown': 'unknown device',
  'h.time': 'Received', 'h.who': 'Person', 'h.device': 'Device', 'h.what': 'What changed',
  'h.create': 'Created the record', 'h.delete': 'Deleted the record', 'h.restore': 'Restored the record',
  'h.approved': 'Approved', 'h.returned': 'Returned', 'h.pending': 'Back to pending', 'h.comment': 'Comment: “{c}”',
  'h.nocomment': 'Removed the comment', 'h.mergedInto': 'Merged into', 'h.absorbed': 'Took in duplicate',
  'h.add': 'added', 'h.remove': 'removed', 'h.none': 'No changes yet.', 'h.more': 'Show all {n} changes',
  'p.required': 'Required but empty', 'p.not_allowed': 'Not an allowed value', 'p.invalid_format': 'Wrong format',
  'p.out_of_range': 'Out of range', 'p.too_long': 'Too long', 'p.wrong_type': 'Wrong kind of value',
  'p.unknown_field': 'Not a field of this record type', 'p.not_a_set': 'Not a list field', 'p.not_a_scalar': 'This field is a list',
  'u.username': 'Username', 'u.role': 'Role', 'u.areas': 'Areas', 'u.sensitive': 'Sees support cases',
  'u.grant': 'May give access to support cases', 'u.state': 'State', 'u.active': 'Active', 'u.disabled': 'Disabled',
  'u.edit': 'Edit', 'u.disable': 'Disable', 'u.enable': 'Enable', 'u.create': 'New account', 'u.password': 'Password',
  'u.pwHint': 'At least 10 characters.', 'u.areasHint': 'Area codes separated by commas, e.g. 62.610, 51.102',
  'u.addArea': 'Add an area', 'u.addAreaPh': 'Type a commune or district…', 'u.newPw': 'New password',
  'u.resetPw': 'Set password', 'u.created': 'Account {u} created.', 'u.saved': 'Account {u} saved.',
  'u.pwSet': 'New password set for {u}.', 'u.allAreas': 'Everywhere', 'u.unknownArea': 'Unknown area code: {c}',
  'u.none': 'No accounts yet.', 'u.taken': 'This username is taken.', 'u.you': '(you)', 'u.editing': 'Edit account {u}',
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
  'f.commune': 'Commune', 'f.village': 'Village', 'f.head_name': 'Head of household', 'f.head_person_id': "Head's record",
  'f.ethnicity': 'Ethnic group', 'f.poverty': 'Poverty status', 'f.especially_difficult_village': 'Especially difficult village',
  'f.address': 'Address', 'f.household_id': 'Household', 'f.full_name': 'Full name', 'f.sex': 'Sex',
  'f.birth': 'Date/year of birth', 'f.national_id': 'ID card (CCCD)', 'f.disability': 'Disability', 'f.phone': 'Phone',
  'f.group.kind': 'Kind of model', 'f.name': 'Name', 'f.established': 'Founded', 'f.gals': 'Runs GALS',
  'f.formal_finance_link': 'Linked to formal finance', 'f.trusted_address_status': 'Trusted address: existing or new',
  'f.model_phase': 'Model phase', 'f.uses_digital_technology': 'Uses 4.0 technology', 'f.members': 'Members',
  'f.activity.kind': 'Kind of activity', 'f.date': 'Date', 'f.place': 'Place', 'f.group_id': 'Organised by group',
  'f.topic': 'Topic', 'f.counselling_topic': 'Counselling topic', 'f.attendees': 'Attendees',
  'f.participants': 'Participants', 'f.opinions_raised': 'Opinions raised', 'f.opinions_answered': 'Opinions answered',
  'f.person_id': 'Person supported', 'f.case_kind': 'Kind of case', 'f.opened': 'Opened', 'f.status': 'Case status',
  'f.support': 'Support given', 'f.trusted_address_id': 'Trusted address', 'f.case_notes': 'Notes', 'f.$deleted': 'Deleted',
  'poverty.poor': 'Poor', 'poverty.near_poor': 'Near-poor', 'poverty.none': 'Neither poor nor near-poor',
  'sex.female': 'Female', 'sex.male': 'Male',
  'disability.none': 'None', 'disability.mild': 'Mild', 'disability.severe': 'Severe', 'disability.especially_severe': 'Especially severe',
  'gk.communication_team': 'Community communication team', 'gk.savings_loan_group': 'Village savings and loan group',
  'gk.livelihood_group': 'Livelihood group', 'gk.cooperative': 'Cooperative', 'gk.trusted_address': 'Trusted address',
  'gk.children_club': "Children's leaders of change club", 'gk.victim_livelihood_model': 'Livelihood model for victims',
  'tas.existing': 'Existing (consolidated)', 'tas.new': 'Newly set up', 'phase.pilot': 'Pilot', 'phase.replicated': 'Replicated',
  'ak.meeting': 'Meeting', 'ak.policy_dialogue': 'Policy dialogue', 'ak.training': 'Training', 'ak.counselling': 'Counselling',
  'ct.antenatal': 'Antenatal care', 'ct.safe_delivery': 'Safe delivery', 'ct.postnatal': 'Postnatal care',
  'ct.child_health': 'Child health', 'ct.gender_equality': 'Gender equality', 'ct.violence_prevention': 'Violence prevention', 'ct.other': 'Other',
  'ck.domestic_violence': 'Domestic violence', 'ck.trafficking': 'Trafficking', 'ck.sexual_abuse': 'Sexual abuse',
  'cs.open': 'Open', 'cs.supported': 'Supported', 'cs.closed': 'Closed',
  'sup.essentials_travel': 'Essentials and travel', 'sup.medical': 'Medical', 'sup.psychological': 'Psychological',
  'sup.legal_aid': 'Legal aid', 'sup.schooling_vocational': 'Schooling, vocational training', 'sup.hardship_allowance': 'Hardship allowance',
  'sup.loan': 'Loan', 'sup.referral': 'Referral', 'sup.temporary_shelter': 'Temporary shelter',
}};

// ---- Domain tables (docs/data-model.md) -------------------------------------------------
// Field order and kind per record type; a kind is text unless given after ':'.
const SCHEMA = {
  household: 'commune:commune village head_name head_person_id:ref ethnicity:eth poverty:code:poverty especially_difficult_village:bool address',
  person: 'commune:commune household_id:ref full_name sex:code:sex birth:dateyear ethnicity:eth national_id disability:code:disability phone',
  group: 'commune:commune village kind:code:gk name established:date gals:bool formal_finance_link:bool trusted_address_status:code:tas model_phase:code:phase uses_digital_technology:bool members:set:ref',
  activity: 'commune:commune kind:code:ak date:date place group_id:ref topic counselling_topic:code:ct attendees:set:ref participants:int opinions_raised:int opinions_answered:int',
  support_case: 'commune:commune person_id:ref case_kind:code:ck opened:date status:code:cs support:set:code:sup trusted_address_id:ref case_notes:long',
};
const TYPES = Object.keys(SCHEMA);
const REVIEWS = ['pending', 'returned', 'changed', 'approved'];
const CODES = {
  poverty: 'poor near_poor none', sex: 'female male', disability: 'none mild severe especially_severe',
  gk: 'communication_team savings_loan_group livelihood_group cooperative trusted_address children_club victim_livelihood_model',
  tas: 'existing new', phase: 'pilot replicated', ak: 'meeting policy_dialogue training counselling',
  ct: 'antenatal safe_delivery postnatal child_health gender_equality violence_prevention other',
  ck: 'domestic_violence trafficking sexual_abuse', cs: 'open supported closed',
  sup: 'essentials_travel medical psychological legal_aid schooling_vocational hardship_allowance loan referral temporary_shelter',
};
const ETH = ('Kinh|Tày|Thái|Hoa|Khơ-me|Mường|Nùng|Hmông|Dao|Gia-rai|Ngái|Ê-đê|Ba-na|Xơ-đăng|Sán Chay|Cơ-ho|Chăm|Sán Dìu|Hrê|Mnông|' +
  'Ra-glai|Xtiêng|Bru-Vân Kiều|Thổ|Giáy|Cơ-tu|Gié-Triêng|Mạ|Khơ-mú|Co|Tà-ôi|Chơ-ro|Kháng|Xinh-mun|Hà Nhì|Chu-ru|Lào|La Chí|' +
  'La Ha|Phù Lá|La Hủ|Lự|Lô Lô|Chứt|Mảng|Pà Thẻn|Cơ Lao|Cống|Bố Y|Si La|Pu Péo|Brâu|Ơ Đu|Rơ-măm').split('|');
const FIELDS = {};
for (const ty of TYPES) FIELDS[ty] = SCHEMA[ty].split(' ').map(s => { const i = s.indexOf(':'); return i < 0 ? [s, 'text'] : [s.slice(0, i), s.slice(i + 1)]; });
const fkind = (ty, f) => ((FIELDS[ty] || []).find(x => x[0] === f) || [f, f[0] === '$' ? 'bool' : 'text'])[1];

// ---- State, strings, small helpers ------------------------------------------------------
const S = { user: null, csrf: null, lang: 'vi', next: null, flash: null, lastList: '#/records', titles: new Map(), areasP: null, A: null };
try { S.lang = localStorage.getItem('fieldsync.lang') === 'en' ? 'en' : 'vi'; } catch (e) { /* storage off */ }
const has = k => k in L[S.lang] || k in L.vi;
function t(k, p) {
  let s = L[S.lang][k] ?? L.vi[k] ?? k;
  if (p) s = s.replace(/\{(\w+)\}/g, (_, x) => p[x] ?? '');
  return s;
}
const flabel = (ty, f) => (has(`f.${ty}.${f}`) ? t(`f.${ty}.${f}`) : has('f.' + f) ? t('f.' + f) : f);
const num = n => Number(n || 0).toLocaleString(S.lang === 'vi' ? 'vi-VN' : 'en-US');
const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'required', 'multiple']);
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
  add(e, kids);
  return e;
}
function add(e, kids) {
  for (const k of kids) {
    if (k == null || k === false) continue;
    if (Array.isArray(k)) add(e, k); else e.append(k instanceof Node ? k : String(k));
  }
  return e;
}
let uid = 0;
const nid = () => 'i' + (++uid);
// A labelled control: <div class=fld><label for>..</label>control hint</div>
function field(label, control, hint) {
  control.id = control.id || nid();
  return h('div', { class: 'fld' }, h('label', { for: control.id }, label), control, hint && h('p', { class: 'hint' }, hint));
}
const DTF = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Ho_Chi_Minh', day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
function fmtTime(iso) {
  const d = new Date(iso);
  if (!iso || isNaN(d)) return iso || '';
  const p = {};
  for (const x of DTF.formatToParts(d)) p[x.type] = x.value;
  return `${p.day}/${p.month}/${p.year} ${p.hour}:${p.minute}`;
}
const fmtDate = s => (/^\d{4}-\d\d-\d\d$/.test(s) ? s.slice(8) + '/' + s.slice(5, 7) + '/' + s.slice(0, 4) : s);

// ---- API ----------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message, retry) { super(message); Object.assign(this, { status, code, retry }); }
}
const STATUS_CODE = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 408: 'request_timeout', 409: 'conflict', 413: 'payload_too_large', 429: 'too_many_requests', 503: 'disk_full' };
const cache = new Map();
async function api(method, path, body, opt = {}) {
  const hd = { Accept: 'application/json', 'X-Requested-With': 'fieldsync' };
  if (method !== 'GET') { hd['Content-Type'] = 'application/json'; if (S.csrf) hd['X-CSRF-Token'] = S.csrf; cache.clear(); }
  const ac = new AbortController();
  const tm = setTimeout(() => ac.abort(), 120000);
  if (opt.signal) opt.signal.addEventListener('abort', () => ac.abort());
  let res;
  try {
    res = await fetch(path, { method, headers: hd, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store', signal: ac.signal });
  } catch (e) {
    const err = new ApiError(0, 'network', '');
    err.aborted = !!(opt.signal && opt.signal.aborted);
    throw err;
  } finally { clearTimeout(tm); }
  let data = null;
  try { const txt = await res.text(); data = txt ? JSON.parse(txt) : null; } catch (e) { /* not JSON */ }
  if (res.ok) return data;
  const err = new ApiError(res.status, (data && data.error) || STATUS_CODE[res.status] || 'internal', (data && data.message) || '', parseInt(res.headers.get('Retry-After'), 10) || 0);
  if (res.status === 401 && !opt.login) { err.handled = true; expire(); }
  throw err;
}
// GET with a small memory of answers, reused only to redraw a page in another language.
function get(path, ctx) {
  if (ctx && ctx.reuse && cache.has(path)) return Promise.resolve(cache.get(path));
  return api('GET', path, undefined, { signal: ctx && ctx.signal }).then(d => {
    cache.set(path, d);
    if (cache.size > 40) cache.delete(cache.keys().next().value);
    return d;
  });
}
function expire() {
  if (!S.user) return;
  S.user = S.csrf = null; cache.clear();
  if (!location.hash.startsWith('#/login')) S.next = location.hash;
  S.flash = 'login.expired';
  go('#/login');
}

// ---- Areas (the 2025 merger crosswalk) -------------------------------------------------------
function areas() {
  if (!S.areasP) {
    S.areasP = api('GET', '/v1/areas').then(d => {
      const by = new Map();
      for (const a of (d && d.areas) || []) by.set(a.code, a);
      S.A = by;
      return by;
    }, e => { S.areasP = null; throw e; });
  }
  return S.areasP;
}
const area = c => S.A && S.A.get(c);
function current(c) { let a = area(c); for (let i = 0; a && a.successor && i < 20; i++) { c = a.successor; a = area(c); } return c; }
function ancestor(c, level) { let a = area(c); for (let i = 0; a && i < 20; i++) { if (a.level === level) return a.code; a = area(a.parent); } return null; }
// The communes the user's areas cover, across the merger both ways (as server/src/scope.rs).
function scopeSet() {
  const mine = (S.user && S.user.areas) || [];
  if (!S.A || mine.includes('*') || !mine.length) return null;
  const out = new Set();
  for (const code of mine) {
    const ar = area(code);
    if (!ar) continue;
    for (const c of S.A.values()) {
      if (c.level !== 'commune') continue;
      const cur = current(c.code);
      const under = x => ancestor(x, ar.level) === ar.code;
      if (c.code === code || (ar.level === 'commune' && cur === current(code)) || under(c.code) || under(cur)) { out.add(c.code); out.add(cur); }
    }
  }
  return out;
}
// A commune shown by name; an old one also says what it became.
function communeEl(code, name) {
  const e = h('span', { class: 'commune', 'data-commune': code || '' });
  fillCommune(e, name);
  return e;
}
function fillCommune(e, name) {
  const code = e.dataset.commune, a = area(code);
  e.replaceChildren(name || (a && a.name) || code || '—');
  if (a && a.valid_to && a.successor) {
    const s = area(a.successor);
    e.append(h('span', { class: 'old' }, ' · ' + t('area.now', { n: s ? s.name : a.successor })));
  }
}
function fillCommunes(root) { areas().then(() => root.querySelectorAll('[data-commune]').forEach(e => fillCommune(e, e.firstChild && e.firstChild.nodeType === 3 && e.firstChild.data !== e.dataset.commune ? e.firstChild.data : ''))).catch(() => {}); }
const levelName = a => (a.level === 'district' && !/^(Thành phố|Thị xã|Huyện)/.test(a.name) ? (S.lang === 'vi' ? 'Huyện ' + a.name : a.name + ' district') : a.name);
// The datalist of area codes with their names, for the account forms.
function areaDatalist() {
  let dl = document.getElementById('areas-dl');
  if (dl) return dl;
  dl = h('datalist', { id: 'areas-dl' });
  document.body.append(dl);
  areas().then(by => {
    for (const a of by.values()) dl.append(h('option', { value: a.code, label: levelName(a) + (a.valid_to ? ' (' + t('area.old') + ')' : '') }));
  }).catch(() => {});
  return dl;
}
function areaNames(codes) {
  return (codes || []).map(c => (c === '*' ? t('u.allAreas') : area(c) ? levelName(area(c)) : c)).join(', ');
}

// ---- Values in words ------------------------------------------------------------------------
function refLink(id) {
  const k = S.titles.get(id);
  return h('a', { href: '#/records/' + encodeURIComponent(id), 'data-ref': id, class: 'ref' }, k && k.title ? k.title : t('rec.open') + ' ' + String(id).slice(0, 8) + '…');
}
// Titles of linked records, fetched a few at a time once the page is drawn.
function fillRefs(root, ctx) {
  const want = [...new Set([...root.querySelectorAll('a[data-ref]')].map(a => a.dataset.ref))].filter(id => !S.titles.has(id)).slice(0, 60);
  const show = id => {
    const k = S.titles.get(id);
    root.querySelectorAll(`a[data-ref="${CSS.escape(id)}"]`).forEach(a => {
      if (k && k.title) { a.textContent = title(k); a.title = t('type.' + k.record_type); } else if (k) a.append(h('span', { class: 'muted' }, ' (' + t('rec.gone') + ')'));
    });
  };
  root.querySelectorAll('a[data-ref]').forEach(a => S.titles.has(a.dataset.ref) && show(a.dataset.ref));
  let i = 0;
  const next = () => {
    if (i >= want.length || !ctx.alive()) return;
    const id = want[i++];
    api('GET', '/v1/records/' + encodeURIComponent(id), undefined, { signal: ctx.signal })
      .then(r => S.titles.set(id, { title: r.title, record_type: r.record_type }), e => { if (!e.aborted && e.status === 404) S.titles.set(id, {}); })
      .then(() => { if (ctx.alive()) show(id); next(); });
  };
  for (let n = 0; n < 3; n++) next();
}
function title(r) {
  if (r.record_type === 'support_case' && has('ck.' + r.title)) return t('ck.' + r.title);
  return r.title || t('notitle');
}
function fmt(kind, v) {
  if (v == null || v === '') return h('span', { class: 'muted' }, t('empty'));
  if (kind.startsWith('code:')) { const k = kind.slice(5) + '.' + v; return has(k) ? t(k) : String(v); }
  switch (kind) {
    case 'bool': return v === true || v === 'true' ? t('yes') : t('no');
    case 'eth': return ETH[parseInt(v, 10) - 1] || String(v);
    case 'commune': return communeEl(v);
    case 'date': case 'dateyear': return fmtDate(String(v));
    case 'int': return typeof v === 'number' ? num(v) : String(v);
    case 'ref': return refLink(String(v));
    case 'long': return h('span', { class: 'long' }, String(v));
  }
  return String(v);
}
function fmtSet(kind, list) {
  if (!list || !list.length) return h('span', { class: 'muted' }, t('empty'));
  const k = kind.slice(4);
  return h('ul', { class: 'setlist' }, list.map(m => h('li', null, fmt(k, m))));
}
const who = a => ((a && a.username) || t('who.unknown')) + ' — ' + ((a && a.device_name) || t('dev.unknown'));

// ---- Notices and errors ---------------------------------------------------------------------
function showError(e) {
  if (!e || e.aborted || e.handled) return;
  if (!(e instanceof ApiError)) { console.error(e); e = new ApiError(0, 'internal', String(e.message || e)); }
  const box = document.querySelector('[data-test=error]');
  if (!box) return;
  const code = has('err.' + e.code) ? e.code : 'internal';
  box.replaceChildren(
    h('div', { class: 'msg' }, h('strong', null, t('err.' + code, { s: e.retry || 30 })),
      e.message && ['bad_request', 'conflict', 'forbidden', 'internal', 'not_found'].includes(code) ? h('span', { class: 'detail' }, ' ' + t('err.detail') + ': ' + e.message) : null),
    h('button', { type: 'button', class: 'x', 'aria-label': t('close'), test: 'error-close', onclick: clearError }, '×'));
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
}
function clearError() { const b = document.querySelector('[data-test=error]'); if (b) { b.hidden = true; b.replaceChildren(); } }
let noticeTimer;
function notice(msg) {
  const n = document.querySelector('[data-test=notice]');
  if (!n) return;
  n.textContent = msg; n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 5000);
}
// Runs an action from a button: busy state, errors shown, button restored.
async function act(btn, fn) {
  const txt = btn.textContent;
  btn.disabled = true; btn.classList.add('busy'); btn.textContent = t('saving');
  clearError();
  try { return await fn(); } catch (e) { showError(e); return undefined; } finally { if (btn.isConnected) { btn.disabled = false; btn.classList.remove('busy'); btn.textContent = txt; } }
}

// ---- Router ---------------------------------------------------------------------------------
// A route: re (matched against the hash path), page(ctx) → optional {update(params)} for changes of
// the query alone, nav (a menu label key) and roles (who may open it; none = every signed-in user).
// The duplicates queue and plan progress will be two more entries here.
const ROUTES = [
  { re: /^login$/, page: pLogin, pub: true },
  { re: /^records$/, page: pRecords, nav: 'nav.records', key: 'records' },
  { re: /^records\/([^/]+)$/, page: pRecord, key: 'records' },
  { re: /^users$/, page: pUsers, nav: 'nav.users', key: 'users', roles: ['admin'] },
  { re: /^devices$/, page: pDevices, nav: 'nav.devices', key: 'devices', roles: ['admin'] },
  { re: /^audit$/, page: pAudit, nav: 'nav.audit', key: 'audit', roles: ['admin'] },
];
let gen = 0, cur = null;
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, ''), i = raw.indexOf('?');
  return { path: decodeURIComponent(i < 0 ? raw : raw.slice(0, i)), q: new URLSearchParams(i < 0 ? '' : raw.slice(i + 1)) };
}
function go(hash, replace) {
  if (location.hash === hash) return render();
  if (replace) { history.replaceState(null, '', hash); render(); } else location.hash = hash;
}
function render(reuse) {
  const { path, q } = parseHash();
  let r = null, m = null;
  for (const x of ROUTES) if ((m = x.re.exec(path))) { r = x; break; }
  if (!r) return go(S.user ? '#/records' : '#/login', true);
  if (!r.pub && !S.user) { S.next = location.hash; return go('#/login', true); }
  if (r.pub && S.user) return go('#/records', true);
  if (r.roles && !r.roles.includes(S.user.role)) return go('#/records', true);
  const key = path;
  if (!reuse && cur && cur.r === r && cur.key === key && cur.inst && cur.inst.update) { cur.inst.update(q); return; }
  gen++;
  if (cur) cur.ac.abort();
  const ac = new AbortController(), g = gen;
  const main = shell(r);
  const ctx = { q, m, main, reuse, signal: ac.signal, alive: () => g === gen };
  cur = { r, key, ac, inst: null };
  Promise.resolve().then(() => r.page(ctx)).then(inst => { if (ctx.alive()) cur.inst = inst; }, showError);
}
function langSwitch() {
  return h('div', { class: 'lang', role: 'group', 'aria-label': t('lang'), test: 'lang' },
    ['vi', 'en'].map(l => h('button', { type: 'button', class: l === S.lang ? 'on' : '', 'aria-pressed': String(l === S.lang), test: 'lang-' + l, lang: l, onclick: () => setLang(l) }, l.toUpperCase())));
}
function setLang(l) {
  S.lang = l;
  try { localStorage.setItem('fieldsync.lang', l); } catch (e) { /* storage off */ }
  document.documentElement.lang = l;
  cur = null;
  render(true);
}
// The page frame: the top bar (when signed in) and the main area with its banners.
function shell(r) {
  const app = document.getElementById('app');
  const main = h('div', { class: 'page' });
  const banners = [h('div', { class: 'banner err', role: 'alert', test: 'error', hidden: true }), h('div', { class: 'banner ok', role: 'status', test: 'notice', hidden: true })];
  document.title = t('app');
  if (!S.user) {
    app.replaceChildren(h('main', { class: 'login-wrap' }, banners, main));
    return main;
  }
  const u = S.user;
  const links = ROUTES.filter(x => x.nav && (!x.roles || x.roles.includes(u.role)))
    .map(x => h('a', { href: '#/' + x.key, class: x.key === r.key ? 'on' : '', 'aria-current': x.key === r.key ? 'page' : null, test: 'nav-' + x.key }, t(x.nav)));
  app.replaceChildren(
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '#/records' }, t('app')),
      h('nav', { 'aria-label': t('nav.main') }, links),
      h('div', { class: 'me' },
        h('span', { class: 'who', test: 'user' }, h('strong', null, u.username), ' · ', t('role.' + u.role)),
        langSwitch(),
        h('button', { type: 'button', class: 'btn ghost', test: 'logout', onclick: logout }, t('logout')))),
    h('main', { class: 'wrap' }, banners, main));
  return main;
}
async function logout() {
  try { await api('DELETE', '/v1/session', undefined, { login: true }); } catch (e) { /* gone already */ }
  S.user = S.csrf = null; cache.clear(); S.titles.clear();
  S.flash = 'login.out';
  go('#/login');
}

// ---- Login ----------------------------------------------------------------------------------
function pLogin(ctx) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, test: 'login-username', autocapitalize: 'off', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, test: 'login-password' });
  const btn = h('button', { type: 'submit', class: 'btn primary wide', test: 'login-submit' }, t('login.go'));
  const msg = S.flash && h('p', { class: 'flash', test: 'login-flash' }, t(S.flash));
  S.flash = null;
  const form = h('form', { class: 'card login', test: 'login-form', novalidate: true, onsubmit: async ev => {
    ev.preventDefault();
    clearError();
    if (!user.value.trim() || !pass.value) { showError(new ApiError(400, 'bad_request', '')); document.querySelector('[data-test=error] strong').textContent = t('login.need'); return; }
    btn.disabled = true; btn.textContent = t('login.busy');
    try {
      const s = await api('POST', '/v1/session', { username: user.value.trim(), password: pass.value }, { login: true });
      S.user = s.user; S.csrf = s.csrf_token;
      const next = S.next; S.next = null;
      go(next && !next.startsWith('#/login') ? next : '#/records');
    } catch (e) {
      btn.disabled = false; btn.textContent = t('login.go');
      showError(e);
      if (e.code === 'forbidden') document.querySelector('[data-test=error] strong').textContent = t('login.collector');
      pass.select();
    }
  } },
  h('div', { class: 'login-top' }, h('div', { class: 'logo', 'aria-hidden': 'true' }), langSwitch()),
  h('h1', null, t('app')), h('p', { class: 'sub' }, t('login.sub')), msg,
  field(t('login.user'), user), field(t('login.pass'), pass), btn);
  ctx.main.append(form, h('p', { class: 'foot' }, t('login.foot')));
  user.focus();
}

// ---- Record list ----------------------------------------------------------------------------
const FILTERS = ['commune', 'type', 'review', 'conflicts', 'problems', 'deleted', 'changed_since', 'q'];
function pRecords(ctx) {
  const main = ctx.main;
  let ac = null, timer = 0, params = ctx.q;
  const sel = (test, onchange) => h('select', { test, onchange });
  const commune = sel('filter-commune', () => set({ commune: commune.value }));
  const type = sel('filter-type', () => set({ type: type.value }));
  const review = sel('filter-review', () => set({ review: review.value }));
  const box = (name, label) => {
    const c = h('input', { type: 'checkbox', test: 'filter-' + name, onchange: () => set({ [name]: c.checked ? 'true' : '' }) });
    const cnt = h('span', { class: 'cnt' });
    return { c, cnt, el: h('label', { class: 'check' }, c, ' ', t(label), ' ', cnt) };
  };
  const conflicts = box('conflicts', 'list.conflicts'), problems = box('problems', 'list.problems'), deleted = box('deleted', 'list.deleted');
  const since = h('input', { type: 'date', test: 'filter-changed-since', max: '2100-12-31', onchange: () => set({ changed_since: since.value }) });
  const q = h('input', { type: 'search', test: 'filter-q', placeholder: t('list.qph'), autocomplete: 'off', oninput: () => { clearTimeout(timer); timer = setTimeout(() => set({ q: q.value.trim() }), 500); } });
  const total = h('span', { class: 'total', test: 'total', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const table = h('table', { class: 'grid records', test: 'records-table' },
    h('thead', null, h('tr', null, ['col.title', 'col.type', 'col.commune', 'col.review', 'col.flags', 'col.updated'].map(k => h('th', { scope: 'col' }, t(k))))), tbody);
  const prev = h('button', { type: 'button', class: 'btn', test: 'page-prev', onclick: () => set({ page: String(pg() - 1) }, true) }, t('prev'));
  const next = h('button', { type: 'button', class: 'btn', test: 'page-next', onclick: () => set({ page: String(pg() + 1) }, true) }, t('next'));
  const info = h('span', { class: 'pinfo', test: 'page-info' });
  const range = h('span', { class: 'muted' });
  const pager = h('div', { class: 'pager', test: 'pager' }, prev, info, next, range);
  const emptyBox = h('div', { class: 'empty', test: 'empty', hidden: true }, h('p', null, h('strong', null, t('list.empty'))), h('p', { class: 'muted' }, t('list.emptyHint')),
    h('button', { type: 'button', class: 'btn', onclick: () => go('#/records') }, t('list.clear')));
  const tableWrap = h('div', { class: 'tablewrap' }, table);
  main.append(h('div', { class: 'list-layout' },
    h('aside', { class: 'filters card', 'aria-label': t('list.filters') },
      h('h2', null, t('list.filters')),
      field(t('list.commune'), commune), field(t('list.type'), type), field(t('list.review'), review),
      h('fieldset', null, h('legend', null, t('list.only')), conflicts.el, problems.el, deleted.el),
      field(t('list.since'), since),
      h('button', { type: 'button', class: 'btn ghost wide', test: 'clear-filters', onclick: () => go('#/records') }, t('list.clear'))),
    h('section', { class: 'results' },
      h('form', { class: 'search', role: 'search', onsubmit: ev => { ev.preventDefault(); clearTimeout(timer); set({ q: q.value.trim() }); } },
        field(t('list.q'), q, t('list.qhint')), h('button', { type: 'submit', class: 'btn primary', test: 'search-submit' }, t('list.qgo'))),
      h('div', { class: 'res-head' }, h('h1', null, t('nav.records')), total),
      tableWrap, emptyBox, pager)));
  const pg = () => Math.max(1, parseInt(params.get('page'), 10) || 1);
  function set(ch, keepPage) {
    const p = new URLSearchParams(params);
    for (const k in ch) if (ch[k]) p.set(k, ch[k]); else p.delete(k);
    if (!keepPage) p.delete('page');
    const s = p.toString();
    go('#/records' + (s ? '?' + s : ''));
  }
  function opts(s, list, value, counts, allLabel) {
    const sum = counts ? Object.values(counts).reduce((a, b) => a + b, 0) : null;
    s.replaceChildren(h('option', { value: '' }, allLabel + (sum != null ? ` (${num(sum)})` : '')),
      list.map(([v, label]) => h('option', { value: v, selected: v === value }, label + (counts ? ` (${num(counts[v] || 0)})` : ''))));
    s.value = value || '';
  }
  function communeOptions(value) {
    const groups = [];
    if (S.A) {
      const sc = scopeSet(), ok = c => !sc || sc.has(c), by = (a, b) => a.name.localeCompare(b.name, 'vi');
      const all = [...S.A.values()];
      const now = all.filter(a => a.level === 'commune' && !a.valid_to && ok(a.code)).sort(by);
      if (now.length) groups.push(h('optgroup', { label: t('list.now') }, now.map(a => h('option', { value: a.code }, a.name))));
      const old = [];
      for (const d of all.filter(a => a.level === 'district' && a.valid_to).sort(by)) {
        const cs = all.filter(a => a.level === 'commune' && a.parent === d.code && ok(a.code)).sort(by);
        if (!cs.length) continue;
        old.push(h('option', { value: d.code }, t('list.district', { n: levelName(d) })));
        for (const c of cs) old.push(h('option', { value: c.code }, '\u2003' + c.name + (c.successor && area(c.successor) ? ' → ' + area(c.successor).name : '')));
      }
      if (old.length) groups.push(h('optgroup', { label: t('list.before') }, old));
    }
    commune.replaceChildren(h('option', { value: '' }, t('list.allCommunes')), groups);
    if (value && ![...commune.options].some(o => o.value === value)) commune.append(h('option', { value }, (area(value) && levelName(area(value))) || value));
    commune.value = value || '';
  }
  function row(r) {
    const flags = [];
    if (r.n_conflicts) flags.push(h('span', { class: 'badge warn', test: 'row-conflicts' }, t('n.conflicts', { n: r.n_conflicts })));
    if (r.n_problems) flags.push(h('span', { class: 'badge bad', test: 'row-problems' }, t('n.problems', { n: r.n_problems })));
    if (r.status && r.status !== 'active') flags.push(h('span', { class: 'badge grey' }, t('status.' + r.status)));
    const href = '#/records/' + encodeURIComponent(r.id);
    return h('tr', { test: 'record-row', 'data-id': r.id, class: 'click', onclick: ev => { if (!ev.target.closest('a') && !getSelection().toString()) go(href); } },
      h('td', null, h('a', { href, class: 'rtitle' }, title(r))),
      h('td', null, t('type.' + r.record_type)),
      h('td', null, communeEl(r.commune, r.commune_name)),
      h('td', null, badge(r.review || 'pending', 'row-review')),
      h('td', { class: 'flags' }, flags),
      h('td', { class: 'nowrap' }, fmtTime(r.updated_at)));
  }
  async function update(p) {
    params = p;
    const v = k => p.get(k) || '';
    communeOptions(v('commune'));
    const types = TYPES.filter(x => x !== 'support_case' || (S.user && S.user.sensitive_access) || v('type') === x);
    opts(type, types.map(x => [x, t('type.' + x)]), v('type'), null, t('all'));
    opts(review, REVIEWS.map(x => [x, t('review.' + x)]), v('review'), null, t('all'));
    conflicts.c.checked = v('conflicts') === 'true'; problems.c.checked = v('problems') === 'true'; deleted.c.checked = v('deleted') === 'true';
    since.value = v('changed_since');
    if (document.activeElement !== q) q.value = v('q');
    const api = new URLSearchParams();
    for (const k of FILTERS) if (v(k)) api.set(k, v(k));
    api.set('limit', '50'); api.set('offset', String((pg() - 1) * 50));
    if (ac) ac.abort();
    ac = new AbortController();
    const mine = ac;
    tableWrap.classList.add('busy'); tableWrap.setAttribute('aria-busy', 'true');
    if (!tbody.firstChild) tbody.append(h('tr', { test: 'loading' }, h('td', { colspan: 6, class: 'loadrow' }, t('loading'))));
    total.textContent = t('loading');
    let d;
    try {
      d = await get('/v1/records?' + api, { reuse: ctx.reuse, signal: mine.signal });
    } catch (e) {
      if (mine !== ac) return;
      tableWrap.classList.remove('busy'); tableWrap.removeAttribute('aria-busy'); total.textContent = '';
      tbody.replaceChildren();
      return showError(e);
    }
    ctx.reuse = false;
    if (mine !== ac || !ctx.alive()) return;
    tableWrap.classList.remove('busy'); tableWrap.removeAttribute('aria-busy');
    const c = d.counts || {};
    opts(type, types.map(x => [x, t('type.' + x)]), v('type'), c.type, t('all'));
    opts(review, REVIEWS.map(x => [x, t('review.' + x)]), v('review'), c.review, t('all'));
    conflicts.cnt.textContent = c.conflicts != null ? `(${num(c.conflicts)})` : '';
    problems.cnt.textContent = c.problems != null ? `(${num(c.problems)})` : '';
    deleted.cnt.textContent = c.deleted != null ? `(${num(c.deleted)})` : '';
    const n = d.total || 0, pages = Math.max(1, Math.ceil(n / 50)), off = d.offset || 0;
    total.textContent = t('list.total', { n: num(n) });
    tbody.replaceChildren(...(d.records || []).map(row));
    const none = !(d.records || []).length;
    tableWrap.hidden = none && n === 0; emptyBox.hidden = !(none && n === 0);
    info.textContent = t('page', { p: num(pg()), n: num(pages) });
    range.textContent = none ? '' : t('list.range', { a: num(off + 1), b: num(off + d.records.length) });
    prev.disabled = pg() <= 1; next.disabled = pg() >= pages;
    pager.hidden = n <= 50 && pg() === 1;
    S.lastList = location.hash || '#/records';
    fillCommunes(tbody);
  }
  areas().then(() => { if (ctx.alive()) communeOptions(params.get('commune') || ''); }).catch(() => {});
  update(params);
  return { update };
}
function badge(state, test) {
  return h('span', { class: 'badge rv-' + state, test: test || null, 'data-state': state }, t('review.' + state));
}

// ---- One record ---------------------------------------------------------------------------
async function pRecord(ctx) {
  const id = decodeURIComponent(ctx.m[1]), main = ctx.main;
  const canEdit = S.user.role === 'supervisor';
  main.append(h('p', { class: 'loading', test: 'loading' }, t('loading')));
  const path = '/v1/records/' + encodeURIComponent(id);
  const hist = h('div', { class: 'hist' });
  let rec = await get(path, ctx);
  if (!ctx.alive()) return;
  async function edit(body, btn, okMsg) {
    const r = await act(btn, () => api('POST', path + '/edits', body));
    if (!r || !ctx.alive()) return;
    rec = r; draw(); notice(okMsg || t('rec.saved'));
    loadHistory();
  }
  function draw() {
    const ty = rec.record_type, f = rec.fields || {}, sets = rec.sets || {};
    const conf = rec.conflicts || [], probs = rec.problems || [];
    const inConf = new Set(conf.map(c => c.field)), probF = new Set(probs.map(p => p.field));
    S.titles.set(rec.id, { title: rec.title, record_type: ty });
    const names = (FIELDS[ty] || []).map(x => x[0]);
    for (const k of [...Object.keys(f), ...Object.keys(sets)]) if (!names.includes(k) && k[0] !== '$') names.push(k);
    const rows = names.map(n => {
      const kind = fkind(ty, n);
      const val = kind.startsWith('set:') ? fmtSet(kind, sets[n]) : fmt(kind, n === 'commune' && f[n] == null ? rec.commune : f[n]);
      return [h('dt', { class: probF.has(n) ? 'bad' : null }, flabel(ty, n)),
        h('dd', { test: 'field-' + n, 'data-field': n }, n === 'commune' && rec.commune_name ? communeEl(rec.commune, rec.commune_name) : val,
          inConf.has(n) && h('button', { type: 'button', class: 'badge warn linkish', onclick: () => document.getElementById('c-' + n).scrollIntoView({ behavior: 'smooth' }) }, t('rec.inConflict')),
          probF.has(n) && h('span', { class: 'badge bad' }, '!'))];
    });
    const statusNote = rec.status === 'deleted' ? h('div', { class: 'note bad', test: 'record-deleted' }, t('rec.deleted'))
      : rec.status === 'merged' ? h('div', { class: 'note', test: 'record-merged' }, t('rec.merged'), ' ', rec.merged_into ? refLink(rec.merged_into) : '') : null;
    const head = h('div', { class: 'rec-head' },
      h('a', { href: S.lastList, class: 'back', test: 'back' }, t('rec.back')),
      h('div', { class: 'kind' }, t('type.' + ty)),
      h('h1', { test: 'record-title' }, title(rec)),
      h('div', { class: 'meta' }, communeEl(rec.commune, rec.commune_name), h('span', { class: 'sep' }, '·'),
        t('rec.updated') + ': ' + fmtTime(rec.updated_at), h('span', { class: 'sep' }, '·'), badge((rec.review && rec.review.state) || 'pending'),
        rec.status !== 'active' && h('span', { class: 'badge grey' }, t('status.' + rec.status))));
    const mainCol = h('div', { class: 'rec-main' },
      ty === 'support_case' && h('div', { class: 'note', test: 'sensitive' }, t('rec.sensitive')), statusNote,
      conf.length ? conflictsCard(ty, f, conf) : null,
      probs.length ? h('section', { class: 'card', test: 'problems' }, h('h2', null, t('rec.problems'), h('span', { class: 'badge bad' }, num(probs.length))),
        h('ul', { class: 'problems' }, probs.map(p => h('li', { test: 'problem-' + p.field }, h('strong', null, flabel(ty, p.field)), ': ',
          has('p.' + p.code) ? t('p.' + p.code) : p.code, p.message && h('span', { class: 'muted' }, ` (${p.message})`))))) : null,
      h('section', { class: 'card' }, h('h2', null, t('rec.fields')), h('dl', { class: 'fields', test: 'fields' }, rows)),
      h('section', { class: 'card' }, h('h2', null, t('rec.history')), hist));
    main.replaceChildren(head, h('div', { class: 'rec-layout' }, mainCol, h('aside', { class: 'rec-side' }, reviewCard(ty, f),
      h('section', { class: 'card small' }, h('dl', { class: 'meta-dl' }, h('dt', null, t('rec.id')), h('dd', { class: 'mono', test: 'record-id' }, rec.id))))));
    document.title = title(rec) + ' · ' + t('app');
    fillRefs(main, ctx);
  }
  function conflictsCard(ty, f, conf) {
    return h('section', { class: 'card conflicts', test: 'conflicts' },
      h('h2', null, t('rec.conflicts'), h('span', { class: 'badge warn' }, num(conf.length))),
      h('p', { class: 'muted' }, t('rec.conflictsHelp')),
      conf.map(c => {
        const kind = fkind(ty, c.field), editable = canEdit && c.field[0] !== '$';
        return h('div', { class: 'conflict', id: 'c-' + c.field, test: 'conflict-' + c.field },
          h('h3', null, flabel(ty, c.field)),
          h('ul', { class: 'cands' }, (c.values || []).map((v, i) => h('li', { class: 'cand', test: 'candidate-' + c.field },
            h('div', { class: 'cval' }, fmt(kind, v.value), JSON.stringify(v.value) === JSON.stringify(f[c.field]) && h('span', { class: 'tag' }, t('rec.shown'))),
            h('div', { class: 'who', test: 'author' }, who(v.author)),
            editable && h('button', { type: 'button', class: 'btn', test: 'pick-' + c.field, 'data-index': i, onclick: ev => edit({ edit: 'set_field', field: c.field, value: v.value }, ev.currentTarget) }, t('rec.pick'))))),
          editable ? customValue(ty, c.field, kind) : !canEdit ? null : h('p', { class: 'muted' }, t('rec.noConflictEdit')));
      }));
  }
  function customValue(ty, name, kind) {
    const ctl = inputFor(kind, 'custom-' + name);
    const err = h('p', { class: 'ferr', hidden: true });
    const btn = h('button', { type: 'submit', class: 'btn primary', test: 'save-' + name }, t('save'));
    return h('form', { class: 'custom', onsubmit: ev => {
      ev.preventDefault();
      const v = valueOf(kind, ctl.value);
      err.hidden = v !== null;
      if (v === null) { err.textContent = t('err.value'); ctl.focus(); return; }
      edit({ edit: 'set_field', field: name, value: v }, btn);
    } }, h('label', { for: ctl.id = nid() }, t('rec.other')), h('div', { class: 'row' }, ctl, btn), err);
  }
  function reviewCard(ty, f) {
    const rv = rec.review || {}, st = rv.state || 'pending';
    const ch = rv.changed_fields || [];
    const comment = h('textarea', { test: 'review-comment', rows: 3, maxlength: 2000 });
    const err = h('p', { class: 'ferr', test: 'review-error', hidden: true }, t('rec.needComment'));
    const approve = h('button', { type: 'button', class: 'btn ok', test: 'approve', onclick: ev => {
      const c = comment.value.trim();
      edit(c ? { edit: 'review', state: 'approved', comment: c } : { edit: 'review', state: 'approved' }, ev.currentTarget, t('rec.approvedOk'));
    } }, t('rec.approve'));
    const ret = h('button', { type: 'button', class: 'btn danger', test: 'return', onclick: ev => {
      const c = comment.value.trim();
      err.hidden = !!c;
      if (!c) { comment.setAttribute('aria-invalid', 'true'); comment.focus(); return; }
      edit({ edit: 'review', state: 'returned', comment: c }, ev.currentTarget, t('rec.returnedOk'));
    } }, t('rec.return'));
    return h('section', { class: 'card review', test: 'review' },
      h('h2', null, t('rec.review')),
      h('div', { class: 'state' }, badge(st, 'review-state')),
      rv.comment && h('div', { class: 'comment' }, h('div', { class: 'lbl' }, t('rec.lastComment')), h('p', { test: 'review-comment-text' }, rv.comment)),
      st === 'changed' && h('div', { class: 'changed', test: 'changed' }, h('h3', null, t('rec.changed')), h('p', { class: 'muted' }, t('rec.changedHelp')),
        h('ul', { test: 'changed-fields' }, ch.map(c => h('li', { 'data-field': c.field }, h('strong', null, flabel(ty, c.field)), ': ',
          h('span', { class: 'was' }, fmt(fkind(ty, c.field), c.approved)), ' → ', h('span', { class: 'now' }, fmt(fkind(ty, c.field), c.now)))))),
      canEdit ? [
        (rec.conflicts || []).length ? h('p', { class: 'note warn small' }, t('rec.resolveFirst')) : null,
        field(t('rec.comment'), comment, t('rec.commentHint')), err,
        h('div', { class: 'actions' }, approve, ret),
        st !== 'pending' && h('button', { type: 'button', class: 'linkbtn', test: 'review-reset', onclick: ev => edit({ edit: 'review', state: 'pending' }, ev.currentTarget) }, t('rec.reset')),
      ] : h('p', { class: 'muted' }, t('rec.readonly')));
  }
  async function loadHistory() {
    hist.replaceChildren(h('p', { class: 'muted' }, t('loading')));
    let d;
    try { d = await get(path + '/history', ctx); } catch (e) { hist.replaceChildren(); return showError(e); }
    if (!ctx.alive()) return;
    const ty = rec.record_type;
    const list = [...(d.changes || [])].sort((a, b) => String(b.received_at).localeCompare(String(a.received_at)));
    if (!list.length) return hist.replaceChildren(h('p', { class: 'muted', test: 'history' }, t('h.none')));
    const tbody = h('tbody');
    const show = n => tbody.replaceChildren(...list.slice(0, n).map(c => h('tr', { test: 'history-row' },
      h('td', { class: 'nowrap' }, fmtTime(c.received_at)),
      h('td', null, (c.author && c.author.username) || t('who.unknown')),
      h('td', null, (c.author && c.author.device_name) || t('dev.unknown')),
      h('td', null, h('ul', { class: 'ops' }, describe(ty, c.ops || []))))));
    show(30);
    const more = list.length > 30 && h('button', { type: 'button', class: 'btn', test: 'history-more', onclick: () => { show(list.length); more.remove(); fillRefs(hist, ctx); } }, t('h.more', { n: num(list.length) }));
    hist.replaceChildren(h('div', { class: 'tablewrap' }, h('table', { class: 'grid', test: 'history' },
      h('thead', null, h('tr', null, ['h.time', 'h.who', 'h.device', 'h.what'].map(k => h('th', { scope: 'col' }, t(k))))), tbody)), more);
    fillRefs(hist, ctx);
  }
  draw();
  loadHistory();
}
// One change's operations in words.
function describe(ty, ops) {
  const out = [], create = ops.some(o => o.key === '$type');
  if (create) out.push(h('li', null, h('strong', null, t('h.create'))));
  for (const { key, value: v } of ops) {
    const li = (...k) => out.push(h('li', null, ...k));
    const slash = key.indexOf('/'), base = slash < 0 ? key : key.slice(0, slash), member = key.slice(slash + 1);
    if (key === '$id' || key === '$type' || key === '$schema') continue;
    if (key === '$deleted') { if (v === true) li(t('h.delete')); else if (!create) li(t('h.restore')); }
    else if (key === '$review') li(t(v === 'approved' ? 'h.approved' : v === 'returned' ? 'h.returned' : 'h.pending'));
    else if (key === '$review_comment') li(v ? t('h.comment', { c: v }) : t('h.nocomment'));
    else if (key === '$merged_into') li(t('h.mergedInto'), ' ', v ? refLink(String(v)) : '—');
    else if (base === '$absorbed') li(t('h.absorbed'), ' ', refLink(member));
    else if (slash > 0 && fkind(ty, base).startsWith('set:')) li(flabel(ty, base), ': ', t(v == null || v === false ? 'h.remove' : 'h.add'), ' ', fmt(fkind(ty, base).slice(4), member));
    else li(h('span', { class: 'fl' }, flabel(ty, key)), ': ', v == null ? h('em', { class: 'muted' }, t('cleared')) : fmt(fkind(ty, key), v));
  }
  return out;
}
// An input suited to a field's kind, and its value in the API's terms (null = nothing entered).
function inputFor(kind, test) {
  const choice = list => h('select', { test }, h('option', { value: '' }, t('choose')), list.map(([v, l]) => h('option', { value: v }, l)));
  if (kind.startsWith('code:')) { const s = kind.slice(5); return choice(CODES[s].split(' ').map(c => [c, t(s + '.' + c)])); }
  if (kind === 'bool') return choice([['true', t('yes')], ['false', t('no')]]);
  if (kind === 'eth') return choice(ETH.map((n, i) => [String(i + 1).padStart(2, '0'), n]));
  if (kind === 'commune' && S.A) return choice([...S.A.values()].filter(a => a.level === 'commune').map(a => [a.code, a.name + (a.valid_to ? ' (' + t('area.old') + ')' : '')]));
  if (kind === 'int') return h('input', { type: 'number', test, step: 1, min: 0 });
  if (kind === 'date') return h('input', { type: 'date', test });
  if (kind === 'long') return h('textarea', { test, rows: 3 });
  return h('input', { test, placeholder: kind === 'dateyear' ? 'YYYY / YYYY-MM-DD' : null });
}
function valueOf(kind, s) {
  s = s.trim();
  if (!s) return null;
  if (kind === 'bool') return s === 'true';
  if (kind === 'int') return /^-?\d+$/.test(s) ? parseInt(s, 10) : null;
  return s;
}

// ---- Admin: accounts ----------------------------------------------------------------------
// A comma-separated list of area codes, with a helper that adds a code by its name.
function areaInput(codes, test) {
  const dl = areaDatalist();
  const list = h('input', { test, value: (codes || []).join(', '), autocomplete: 'off', oninput: () => preview() });
  const pick = h('input', { list: dl.id, test: test + '-add', placeholder: t('u.addAreaPh'), autocomplete: 'off', onchange: () => {
    const v = pick.value.trim();
    if (!v) return;
    const cur = value();
    if (!cur.includes(v)) list.value = [...cur, v].join(', ');
    pick.value = ''; preview();
  } });
  const pv = h('p', { class: 'hint', 'aria-live': 'polite' });
  const value = () => list.value.split(',').map(s => s.trim()).filter(Boolean);
  function preview() {
    const v = value(), bad = S.A ? v.filter(c => c !== '*' && !area(c)) : [];
    pv.replaceChildren(v.length ? areaNames(v) : t('u.areasHint'), bad.length ? h('span', { class: 'ferr' }, ' — ' + t('u.unknownArea', { c: bad.join(', ') })) : '');
  }
  areas().then(preview, () => {}); preview();
  return { value, el: h('div', { class: 'areas-in' }, field(t('u.areas'), list, t('u.areasHint')), field(t('u.addArea'), pick), pv) };
}
async function pUsers(ctx) {
  const main = ctx.main, me = S.user;
  const tbody = h('tbody');
  const table = h('table', { class: 'grid', test: 'users-table' },
    h('thead', null, h('tr', null, ['u.username', 'u.role', 'u.areas', 'u.sensitive', 'u.state', ''].map(k => h('th', { scope: 'col' }, k && t(k))))), tbody);
  main.append(h('div', { class: 'admin-layout' },
    h('section', null, h('h1', null, t('nav.users')), h('div', { class: 'tablewrap' }, table)),
    createForm()));
  tbody.append(h('tr', null, h('td', { colspan: 6, class: 'loadrow' }, t('loading'))));
  let users = await get('/v1/admin/users', ctx);
  if (!ctx.alive()) return;
  await areas().catch(() => null);
  draw();
  function draw() {
    tbody.replaceChildren(...(users.length ? users.map(row) : [h('tr', null, h('td', { colspan: 6, class: 'loadrow' }, t('u.none')))]));
  }
  const upd = u => { users = users.map(x => (x.username === u.username ? u : x)); draw(); };
  function row(u) {
    const self = u.username === me.username;
    const tr = h('tr', { test: 'user-row', 'data-username': u.username, class: u.disabled ? 'dim' : null },
      h('td', null, h('strong', null, u.username), self && h('span', { class: 'muted' }, ' ' + t('u.you'))),
      h('td', null, t('role.' + u.role)),
      h('td', null, areaNames(u.areas) || '—'),
      h('td', null, u.sensitive_access ? t('yes') : t('no')),
      h('td', null, h('span', { class: 'badge ' + (u.disabled ? 'grey' : 'good') }, t(u.disabled ? 'u.disabled' : 'u.active'))),
      h('td', { class: 'acts' },
        h('button', { type: 'button', class: 'btn small', test: 'user-edit', onclick: () => editRow(u, tr) }, t('u.edit')),
        !self && h('button', { type: 'button', class: 'btn small' + (u.disabled ? '' : ' danger-o'), test: 'user-toggle', onclick: ev => act(ev.currentTarget, async () => {
          upd(await api('PATCH', '/v1/admin/users/' + encodeURIComponent(u.username), { disabled: !u.disabled }));
          notice(t('u.saved', { u: u.username }));
        }) }, t(u.disabled ? 'u.enable' : 'u.disable'))));
    return tr;
  }
  function editRow(u, tr) {
    const open = tr.nextElementSibling && tr.nextElementSibling.classList.contains('edit');
    tbody.querySelectorAll('tr.edit').forEach(r => r.remove());
    if (open) return;
    const ai = areaInput(u.areas, 'user-areas');
    const sens = h('input', { type: 'checkbox', checked: !!u.sensitive_access, test: 'user-sensitive' });
    const grant = h('input', { type: 'checkbox', checked: !!u.can_grant_sensitive, test: 'user-grant' });
    const save = h('button', { type: 'submit', class: 'btn primary', test: 'user-save' }, t('save'));
    const pw = h('input', { type: 'password', autocomplete: 'new-password', minlength: 10, test: 'user-password' });
    const pwBtn = h('button', { type: 'submit', class: 'btn', test: 'user-password-save' }, t('u.resetPw'));
    const body = { };
    tr.after(h('tr', { class: 'edit', test: 'user-edit-row' }, h('td', { colspan: 6 },
      h('div', { class: 'edit-grid' },
        h('form', { onsubmit: ev => { ev.preventDefault(); act(save, async () => {
          Object.assign(body, { areas: ai.value(), sensitive_access: sens.checked });
          if (me.can_grant_sensitive) body.can_grant_sensitive = grant.checked;
          upd(await api('PATCH', '/v1/admin/users/' + encodeURIComponent(u.username), body));
          notice(t('u.saved', { u: u.username }));
        }); } },
          h('h3', null, t('u.editing', { u: u.username })), ai.el,
          h('label', { class: 'check' }, sens, ' ', t('u.sensitive')),
          me.can_grant_sensitive && h('label', { class: 'check' }, grant, ' ', t('u.grant')),
          h('div', { class: 'actions' }, save, h('button', { type: 'button', class: 'btn ghost', onclick: () => editRow(u, tr) }, t('close')))),
        h('form', { onsubmit: ev => { ev.preventDefault(); act(pwBtn, async () => {
          await api('POST', '/v1/admin/users/' + encodeURIComponent(u.username) + '/password', { password: pw.value });
          pw.value = ''; notice(t('u.pwSet', { u: u.username }));
        }); } }, h('h3', null, t('u.resetPw')), field(t('u.newPw'), pw, t('u.pwHint')), pwBtn)))));
  }
  function createForm() {
    const name = h('input', { test: 'new-username', autocomplete: 'off', required: true, autocapitalize: 'off', spellcheck: 'false' });
    const pw = h('input', { type: 'password', autocomplete: 'new-password', minlength: 10, required: true, test: 'new-password' });
    const role = h('select', { test: 'new-role' }, ['collector', 'supervisor', 'admin'].map(r => h('option', { value: r }, t('role.' + r))));
    const ai = areaInput([], 'new-areas');
    const sens = h('input', { type: 'checkbox', test: 'new-sensitive' });
    const grant = h('input', { type: 'checkbox', test: 'new-grant' });
    const btn = h('button', { type: 'submit', class: 'btn primary', test: 'new-submit' }, t('u.create'));
    const form = h('form', { class: 'card', test: 'user-create', onsubmit: ev => { ev.preventDefault(); act(btn, async () => {
      const body = { username: name.value.trim(), password: pw.value, role: role.value, areas: ai.value(), sensitive_access: sens.checked };
      if (me.can_grant_sensitive) body.can_grant_sensitive = grant.checked;
      try {
        const u = await api('POST', '/v1/admin/users', body);
        users = [...users.filter(x => x.username !== u.username), u]; draw();
        notice(t('u.created', { u: u.username }));
        form.reset(); ai.el.querySelector('input').value = '';
      } catch (e) {
        if (e.code === 'conflict') e.message = t('u.taken');
        throw e;
      }
    }); } },
    h('h2', null, t('u.create')), field(t('u.username'), name), field(t('u.password'), pw, t('u.pwHint')), field(t('u.role'), role), ai.el,
    h('label', { class: 'check' }, sens, ' ', t('u.sensitive')), me.can_grant_sensitive && h('label', { class: 'check' }, grant, ' ', t('u.grant')),
    h('div', { class: 'actions' }, btn));
    return form;
  }
}

// ---- Admin: devices ----------------------------------------------------------------------------
async function pDevices(ctx) {
  const main = ctx.main;
  const tbody = h('tbody', null, h('tr', null, h('td', { colspan: 5, class: 'loadrow' }, t('loading'))));
  main.append(h('h1', null, t('nav.devices')), h('p', { class: 'muted lead' }, t('d.help')),
    h('div', { class: 'tablewrap' }, h('table', { class: 'grid', test: 'devices-table' },
      h('thead', null, h('tr', null, ['d.user', 'd.name', 'd.kind', 'd.state', ''].map(k => h('th', { scope: 'col' }, k && t(k))))), tbody)));
  let list = await get('/v1/admin/devices', ctx);
  if (!ctx.alive()) return;
  list = [...list].sort((a, b) => (a.revoked - b.revoked) || String(a.username).localeCompare(String(b.username)));
  const row = d => {
    const acts = h('td', { class: 'acts' });
    const ask = () => acts.replaceChildren(h('span', { class: 'ask' }, t('d.ask')),
      h('button', { type: 'button', class: 'btn small danger', test: 'revoke-confirm', onclick: ev => act(ev.currentTarget, async () => {
        await api('POST', '/v1/admin/devices/' + encodeURIComponent(d.id) + '/revoke', {});
        d.revoked = true; tr.replaceWith(row(d)); notice(t('d.done', { n: d.name || d.id }));
      }) }, t('d.confirm')),
      h('button', { type: 'button', class: 'btn small ghost', test: 'revoke-cancel', onclick: idle }, t('cancel')));
    const idle = () => acts.replaceChildren(d.revoked ? '' : h('button', { type: 'button', class: 'btn small danger-o', test: 'revoke', onclick: ask }, t('d.revoke')));
    idle();
    const tr = h('tr', { test: 'device-row', 'data-id': d.id, class: d.revoked ? 'dim' : null },
      h('td', null, h('strong', null, d.username || '—')), h('td', null, d.name || '—'),
      h('td', null, t(d.kind === 'browser' ? 'd.browser' : 'd.phone')),
      h('td', null, h('span', { class: 'badge ' + (d.revoked ? 'grey' : 'good') }, t(d.revoked ? 'd.revoked' : 'd.active'))), acts);
    return tr;
  };
  tbody.replaceChildren(...(list.length ? list.map(row) : [h('tr', null, h('td', { colspan: 5, class: 'loadrow' }, t('d.none')))]));
}

// ---- Admin: audit log -----------------------------------------------------------------------
async function pAudit(ctx) {
  const main = ctx.main, before = ctx.q.get('before');
  const tbody = h('tbody', null, h('tr', null, h('td', { colspan: 6, class: 'loadrow' }, t('loading'))));
  const older = h('button', { type: 'button', class: 'btn', test: 'audit-older', disabled: true }, t('a.older'));
  const newest = h('button', { type: 'button', class: 'btn', test: 'audit-newest', disabled: !before, onclick: () => go('#/audit') }, t('a.newest'));
  main.append(h('h1', null, t('a.title')), h('p', { class: 'muted lead' }, t('a.help')),
    h('div', { class: 'tablewrap' }, h('table', { class: 'grid audit', test: 'audit-table' },
      h('thead', null, h('tr', null, ['a.time', 'a.user', 'a.action', 'a.target', 'a.detail', 'a.peer'].map(k => h('th', { scope: 'col' }, t(k))))), tbody)),
    h('div', { class: 'pager' }, newest, older));
  const d = await get('/v1/audit?limit=100' + (before ? '&before=' + encodeURIComponent(before) : ''), ctx);
  if (!ctx.alive()) return;
  const es = (d && d.entries) || [];
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  tbody.replaceChildren(...(es.length ? es.map(e => h('tr', { test: 'audit-row', 'data-seq': e.seq },
    h('td', { class: 'nowrap' }, fmtTime(e.at)), h('td', null, e.username || '—'),
    h('td', { class: e.action === 'login_failed' ? 'bad' : null }, has('act.' + e.action) ? t('act.' + e.action) : e.action),
    h('td', { class: 'mono' }, e.target && uuid.test(e.target) && ['view_case', 'review', 'edit'].includes(e.action) ? refLink(e.target) : e.target || '—'),
    h('td', null, e.detail || ''), h('td', { class: 'mono' }, e.peer || ''))) : [h('tr', null, h('td', { colspan: 6, class: 'loadrow' }, t('a.none')))]));
  if (es.length >= 100) { older.disabled = false; older.onclick = () => go('#/audit?before=' + es[es.length - 1].seq); }
}

// ---- Start ------------------------------------------------------------------------------------
async function boot() {
  document.documentElement.lang = S.lang;
  window.addEventListener('hashchange', () => render());
  try {
    const s = await api('GET', '/v1/session', undefined, { login: true });
    if (s && s.user && s.user.role !== 'collector') { S.user = s.user; S.csrf = s.csrf_token; }
  } catch (e) {
    if (e.status !== 401) { render(); showError(e); return; }
  }
  render();
}
boot();
})();
