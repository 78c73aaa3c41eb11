// fieldsync's Kotlin API on a JVM, against a real server over HTTPS. Run by
// android-bindings/kotlin-tests/run (part of scripts/test-all).

import java.io.File
import java.net.HttpURLConnection
import java.net.URL
import java.security.KeyStore
import java.security.cert.CertificateFactory
import javax.net.ssl.HttpsURLConnection
import javax.net.ssl.SSLContext
import javax.net.ssl.TrustManagerFactory
import uniffi.fieldsync_android.*

/** The app's transport: plain HttpsURLConnection, trusting only the server's certificate. */
class PinnedTransport(certPem: File) : HttpTransport {
    private val ssl: SSLContext = SSLContext.getInstance("TLS").apply {
        val cert = CertificateFactory.getInstance("X.509").generateCertificate(certPem.inputStream())
        val keys = KeyStore.getInstance(KeyStore.getDefaultType()).apply { load(null, null); setCertificateEntry("fieldsync", cert) }
        val tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm()).apply { init(keys) }
        init(null, tmf.trustManagers, null)
    }
    var calls = 0
    var beforeAnswer: (Int) -> Unit = {}

    override fun post(url: String, headers: List<Header>, body: ByteArray): HttpResponse {
        val call = calls++
        try {
            val conn = URL(url).openConnection() as HttpURLConnection
            if (conn is HttpsURLConnection) conn.sslSocketFactory = ssl.socketFactory
            conn.requestMethod = "POST"
            conn.doOutput = true
            conn.connectTimeout = 10_000
            conn.readTimeout = 30_000
            headers.forEach { conn.setRequestProperty(it.name, it.value) }
            conn.setFixedLengthStreamingMode(body.size)
            conn.outputStream.use { it.write(body) }
            val status = conn.responseCode
            val stream = if (status >= 400) conn.errorStream else conn.inputStream
            val answer = stream?.use { it.readBytes() } ?: ByteArray(0)
            beforeAnswer(call)
            return HttpResponse(status.toUShort(), answer)
        } catch (e: java.io.IOException) {
            throw TransportException.Failed(e.javaClass.simpleName + ": " + (e.message ?: ""))
        }
    }
}

val server = System.getenv("FIELDSYNC_URL") ?: error("FIELDSYNC_URL not set")
val cert = File(System.getenv("FIELDSYNC_CERT") ?: error("FIELDSYNC_CERT not set"))
val workDir = File(System.getenv("FIELDSYNC_WORK") ?: error("FIELDSYNC_WORK not set"))
const val PASSWORD = "mật-khẩu-thử"
const val COMMUNE = "62.610.01"

fun text(name: String, value: String) = Field(name, FieldValue.Text(value))
fun Record.field(name: String): FieldValue? = fields.firstOrNull { it.name == name }?.value
fun check(condition: Boolean, message: () -> String) { if (!condition) throw AssertionError(message()) }
fun newStore(name: String): FieldStore = FieldStore.open(File(workDir, "$name-${System.nanoTime()}.sqlite").path)

fun twoDevicesMergeAndSeeTheConflict() {
    val transport = PinnedTransport(cert)
    val a = newStore("a")
    val b = newStore("b")
    a.enrol(transport, server, "lan", PASSWORD, "Điện thoại Lan")
    b.enrol(transport, server, "hoa", PASSWORD, "Điện thoại Hoà")
    val household = a.createRecord(RecordKind.HOUSEHOLD, listOf(
        text("commune", COMMUNE), text("head_name", "Nguyễn Thị Hoà"), text("ethnicity", "01"),
        text("poverty", "near_poor"), Field("especially_difficult_village", FieldValue.Bool(true))))
    val members = listOf("Y Blơ", "Đinh Thị Thúy").map { name ->
        a.createRecord(RecordKind.PERSON, listOf(
            text("commune", COMMUNE), text("household_id", household), text("full_name", name),
            text("sex", "female"), text("birth", "1994-03-08"), text("ethnicity", "14")))
    }
    a.sync(transport)
    b.sync(transport)
    check(b.listRecords(RecordFilter(kind = RecordKind.PERSON)).size == 2) { "b received both members" }

    // Both edit the same person offline, then sync.
    val person = members[0]
    a.setField(person, text("full_name", "Y Blơ Nhiên"))
    a.setField(person, text("phone", "0912345678"))
    b.setField(person, text("full_name", "Y Blờ"))
    b.setField(person, Field("disability", FieldValue.Text("mild")))
    a.sync(transport)
    b.sync(transport)
    a.sync(transport)
    val ra = a.getRecord(person)
    val rb = b.getRecord(person)
    check(ra == rb) { "both devices see the same merged record:\n$ra\n$rb" }
    check(ra.field("phone") == FieldValue.Text("0912345678")) { "a's phone survived" }
    check(ra.field("disability") == FieldValue.Text("mild")) { "b's disability survived" }
    val conflicts = b.conflicts(person)
    check(conflicts.size == 1 && conflicts[0].field == "full_name") { "one conflict on full_name: $conflicts" }
    val values = conflicts[0].values.map { (it.value as FieldValue.Text).value }.toSet()
    check(values == setOf("Y Blơ Nhiên", "Y Blờ")) { "both values kept: $values" }
    check(conflicts[0].values.map { it.device }.toSet().size == 2) { "each value names its device" }
    check(a.getRecord(household).field("head_name") == FieldValue.Text("Nguyễn Thị Hoà")) { "diacritics round-trip" }
    val found = b.listRecords(RecordFilter(search = "nguyen thi hoa"))
    check(found.map { it.id } == listOf(household)) { "diacritic-insensitive search: $found" }
    check(a.pendingChanges() == 0uL && b.pendingChanges() == 0uL) { "everything acknowledged" }
    a.closeStore(); b.closeStore()
}

fun supervisorReviewReachesThePhone() {
    val transport = PinnedTransport(cert)
    val a = newStore("review")
    a.enrol(transport, server, "lan", PASSWORD, "Điện thoại Lan")
    val id = a.createRecord(RecordKind.HOUSEHOLD, listOf(
        text("commune", COMMUNE), text("head_name", "Y Khuyên"), text("ethnicity", "14"), text("poverty", "poor")))
    a.sync(transport)
    // A supervisor returns it with a comment, over the supervisors' API.
    val enrol = transport.post("$server/v1/enrol", listOf(Header("content-type", "application/json")),
        """{"username":"giamsat","password":"$PASSWORD"}""".toByteArray())
    val token = Regex("\"token\":\"([0-9a-f]+)\"").find(String(enrol.body))!!.groupValues[1]
    val edit = transport.post("$server/v1/records/$id/edits",
        listOf(Header("authorization", "Bearer $token"), Header("content-type", "application/json")),
        """{"edit":"review","state":"returned","comment":"Thiếu số CCCD của chủ hộ"}""".toByteArray())
    check(edit.status.toInt() == 200) { "review accepted: ${String(edit.body)}" }
    a.sync(transport)
    val record = a.getRecord(id)
    check(record.review == Review.RETURNED) { "review state on the phone: ${record.review}" }
    check(record.reviewComment == "Thiếu số CCCD của chủ hộ") { "comment: ${record.reviewComment}" }
    a.closeStore()
}

fun aMergedDuplicateLeadsToTheKeptRecord() {
    val transport = PinnedTransport(cert)
    val a = newStore("dup")
    a.enrol(transport, server, "lan", PASSWORD, "Điện thoại Lan")
    val person = { name: String -> listOf(
        text("commune", COMMUNE), text("household_id", "0190a000-0000-7000-8000-000000000001"),
        text("full_name", name), text("sex", "female"), text("birth", "1990"), text("ethnicity", "30"),
        text("national_id", "062190000456")) }
    val kept = a.createRecord(RecordKind.PERSON, person("Nguyễn Thị Hoà"))
    val duplicate = a.createRecord(RecordKind.PERSON, person("Y Hoà Niê"))
    a.sync(transport)
    val enrol = transport.post("$server/v1/enrol", listOf(Header("content-type", "application/json")),
        """{"username":"giamsat","password":"$PASSWORD"}""".toByteArray())
    val token = Regex("\"token\":\"([0-9a-f]+)\"").find(String(enrol.body))!!.groupValues[1]
    val merge = transport.post("$server/v1/duplicates/merge",
        listOf(Header("authorization", "Bearer $token"), Header("content-type", "application/json")),
        """{"keep":"$kept","duplicate":"$duplicate"}""".toByteArray())
    check(merge.status.toInt() == 200) { "merge accepted: ${String(merge.body)}" }
    a.sync(transport)
    check(a.resolve(duplicate) == kept) { "the duplicate resolves to the kept record" }
    check(a.resolve(kept) == kept) { "the kept record resolves to itself" }
    check(a.getRecord(duplicate).mergedInto == kept) { "the duplicate says where it went" }
    val persons = a.listRecords(RecordFilter(kind = RecordKind.PERSON)).map { it.id }
    check(kept in persons && duplicate !in persons) { "only the kept record is listed: $persons" }
    val found = a.listRecords(RecordFilter(search = "nie")).map { it.id }
    check(found == listOf(kept)) { "found by the duplicate's name: $found" }
    a.closeStore()
}

fun errorsAreTypedExceptions() {
    val transport = PinnedTransport(cert)
    val a = newStore("errors")
    try { a.enrol(transport, server, "lan", "sai mật khẩu", "x"); throw AssertionError("wrong password accepted") }
    catch (e: FieldsyncException.Unauthorized) { }
    a.enrol(transport, server, "lan", PASSWORD, "x")
    try {
        a.createRecord(RecordKind.HOUSEHOLD, listOf(text("commune", COMMUNE), text("head_name", "Y Hơ"),
            text("ethnicity", "99"), text("poverty", "rich"), text("colour", "đỏ")))
        throw AssertionError("invalid record accepted")
    } catch (e: FieldsyncException.Validation) {
        check(e.fields.toSet() == setOf("ethnicity", "poverty", "colour")) { "fields named: ${e.fields}" }
        check(!e.reason.contains("đỏ")) { "no entered values in messages" }
    }
    check(a.listRecords(RecordFilter()).isEmpty()) { "nothing written" }
    val offline = newStore("offline")
    offline.enrol(transport, server, "lan", PASSWORD, "x")
    offline.createRecord(RecordKind.HOUSEHOLD, listOf(text("commune", COMMUNE), text("head_name", "Y Hơ"), text("ethnicity", "14"), text("poverty", "poor")))
    val unreachable = object : HttpTransport {
        override fun post(url: String, headers: List<Header>, body: ByteArray): HttpResponse =
            throw TransportException.Failed("no signal")
    }
    try { offline.sync(unreachable); throw AssertionError("sync without network succeeded") }
    catch (e: FieldsyncException.Network) { }
    check(offline.pendingChanges() == 1uL) { "the edit waits for the network" }
    offline.sync(transport)
    check(offline.pendingChanges() == 0uL) { "and goes when it is back" }
    a.closeStore(); offline.closeStore()
}

fun killedMidSyncResumes() {
    val transport = PinnedTransport(cert)
    val path = File(workDir, "killed-${System.nanoTime()}.sqlite").path
    val store = FieldStore.open(path)
    store.enrol(transport, server, "hoa", PASSWORD, "x")
    repeat(1200) { i ->
        store.createRecord(RecordKind.HOUSEHOLD, listOf(text("commune", COMMUNE), text("head_name", "Y Rin $i"), text("ethnicity", "14"), text("poverty", "poor")))
    }
    transport.calls = 0
    // The app dies (the store object goes away) after the server answered the 2nd exchange.
    transport.beforeAnswer = { call -> if (call == 1) { store.closeStore(); throw TransportException.Failed("killed") } }
    try { store.sync(transport); throw AssertionError("sync survived the kill") } catch (e: FieldsyncException) { }
    transport.beforeAnswer = {}
    val reopened = FieldStore.open(path)
    check(reopened.pendingChanges() in 1uL..1199uL) { "part was acknowledged before the kill: ${reopened.pendingChanges()}" }
    reopened.sync(transport)
    check(reopened.pendingChanges() == 0uL) { "the rest went at the next sync" }
    val other = newStore("verify")
    other.enrol(transport, server, "lan", PASSWORD, "x")
    other.sync(transport)
    val rins = other.listRecords(RecordFilter(search = "y rin"))
    check(rins.size == 1200) { "the server has every record exactly once: ${rins.size}" }
    reopened.closeStore(); other.closeStore()
}

val tests = listOf(
    "two devices merge and see the conflict" to ::twoDevicesMergeAndSeeTheConflict,
    "supervisor review reaches the phone" to ::supervisorReviewReachesThePhone,
    "a merged duplicate leads to the kept record" to ::aMergedDuplicateLeadsToTheKeptRecord,
    "errors are typed exceptions" to ::errorsAreTypedExceptions,
    "killed mid-sync resumes" to ::killedMidSyncResumes,
)

fun main() {
    var passed = 0
    var failed = 0
    for ((name, test) in tests) {
        try {
            test()
            passed++
            println("ok: $name")
        } catch (e: Throwable) {
            failed++
            println("FAILED: $name: $e")
            e.printStackTrace()
        }
    }
    println("kotlin: $passed passed, $failed failed")
    System.exit(if (failed == 0) 0 else 1)
}
