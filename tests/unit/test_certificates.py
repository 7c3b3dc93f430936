"""Certificates on the embedded default (SQLite, a local folder): numbers, the PDF as a person sees it (rendered
to PNG, text extracted, QR code decoded), issue once per award, revoke and reissue, the public verification."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path

import pytest

from award_factory import CID, need_font, re_release_without, seed_release
from kepu.certificates import steps
from kepu.certificates.numbers import ALPHABET, certificate_number, load_secret, normalise_number, number_pattern
from kepu.certificates.render import CertificatePage, chinese_date, render_pdf, wrap_cjk
from kepu.certificates.store import certificate_key, register_key, units_prefix
from kepu.certificates.verify import VERIFY_PATH, public_status, verification_url
from kepu.config import load_settings
from kepu.context import Context, open_context
from kepu.errors import AwardError, ConfigError

pytestmark = pytest.mark.unit

SECRET = "a-test-secret-of-some-length"
BASE = "https://kepu.example.org"


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    settings = load_settings(
        {"KEPU_HOME": str(tmp_path / "kepu"), "KEPU_CERT_SECRET": SECRET, "KEPU_PUBLIC_BASE_URL": BASE + "/"}
    )
    return open_context(settings, migrate=True)


def pdf_pages(data: bytes) -> list[tuple[str, object]]:
    """(text, PIL image at 150 dpi) of every page."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    out = []
    for page in pdf:
        text = page.get_textpage().get_text_range()
        out.append((re.sub(r"\s+", "", text), page.render(scale=150 / 72).to_pil()))
    return out


def qr_codes(image: object) -> list[str]:
    import zxingcpp

    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


def not_blank(image: object) -> bool:
    from PIL import ImageStat

    gray = image.convert("L")  # type: ignore[attr-defined]
    stat = ImageStat.Stat(gray)
    dark = sum(gray.histogram()[:128]) / (gray.width * gray.height)
    return stat.stddev[0] > 20 and dark > 0.005


# --- numbers ----------------------------------------------------------------------------------------------------


def test_numbers_are_keyed_formatted_and_never_sequential() -> None:
    key = SECRET.encode()
    n0 = certificate_number(key, "KP2022", CID, "excellent_video", "s0001", 0)
    assert number_pattern("KP2022").fullmatch(n0), n0
    assert certificate_number(key, "KP2022", CID, "excellent_video", "s0001", 0) == n0
    others = {certificate_number(key, "KP2022", CID, "excellent_video", f"s{i:04d}", 0) for i in range(200)}
    assert len(others) == 200
    # Another generation, type or key gives an unrelated number.
    assert certificate_number(key, "KP2022", CID, "excellent_video", "s0001", 1) != n0
    assert certificate_number(key, "KP2022", CID, "residency", "s0001", 0) != n0
    assert certificate_number(b"another-secret-entirely", "KP2022", CID, "excellent_video", "s0001", 0) != n0
    # Consecutive submissions give no consecutive numbers.
    body = [int("".join(str(ALPHABET.index(ch)).zfill(2) for ch in n.replace("-", "")[6:])) for n in sorted(others)]
    assert len({b - a for a, b in itertools.pairwise(body)}) > 150
    assert normalise_number(" kp2022-" + n0[7:].lower().replace("0", "o")) == n0


def test_secret_from_settings_or_kept_under_home(tmp_path: Path) -> None:
    home = load_settings({"KEPU_HOME": str(tmp_path / "h")})
    first = load_secret(home)
    assert load_secret(home) == first and len(first) >= 32
    assert (tmp_path / "h" / "cert-secret").stat().st_mode & 0o077 == 0
    assert load_secret(load_settings({"KEPU_HOME": str(tmp_path / "h"), "KEPU_CERT_SECRET": SECRET})) == SECRET.encode()
    with pytest.raises(ConfigError, match="shorter"):
        load_secret(load_settings({"KEPU_HOME": str(tmp_path / "h"), "KEPU_CERT_SECRET": "short"}))
    with pytest.raises(ConfigError, match="KEPU_PUBLIC_BASE_URL"):
        load_settings({"KEPU_HOME": str(tmp_path / "h"), "KEPU_PUBLIC_BASE_URL": "kepu.example.org"})


def test_verification_url_is_the_dashboards_public_route() -> None:
    from kepu.dashboard import URL_PREFIX
    from kepu.dashboard.app import public

    assert f"{URL_PREFIX}/verify/" == VERIFY_PATH
    assert any(getattr(r, "path", "") == "/verify/{number}" for r in public.routes)
    assert verification_url(BASE + "/", "KP2022-ABCD-EFGH-JKMN") == f"{BASE}/kepu/verify/KP2022-ABCD-EFGH-JKMN"


# --- the PDF -----------------------------------------------------------------------------------------------------


def test_chinese_dates_and_wrapping() -> None:
    assert chinese_date(dt.date(2022, 12, 20)) == "二〇二二年十二月二十日"
    assert chinese_date(dt.date(2023, 1, 5)) == "二〇二三年一月五日"
    assert chinese_date(dt.date(2022, 10, 31)) == "二〇二二年十月三十一日"
    need_font()
    from kepu.certificates.render import _register_font

    _register_font()
    lines = wrap_cjk(
        "你（单位）创作的科普微视频《会飞的种子》在2022年青少年科技教育活动主题微视频征集中被评为优秀科普微视频。",
        300,
        18,
        indent=2,
    )
    assert len(lines) > 2 and lines[0].startswith("\u3000\u3000")
    assert not any(line[0] in "，。、》）" for line in lines[1:])


def page(**kw: object) -> CertificatePage:
    values: dict[str, object] = {
        "number": "KP2022-7F3K-9QXM-2B8D",
        "heading_zh": "荣誉证书",
        "heading_en": "Certificate of Honour",
        "award_zh": "优秀科普微视频",
        "award_en": "Excellent science micro-video",
        "holder": "广州市少年宫",
        "body_zh": "广州市少年宫：\n你（单位）创作的科普微视频《会飞的种子》被评为优秀科普微视频。\n特发此证。",
        "body_en": "The micro-video was selected.",
        "issuer_zh": "中国青少年科技教育工作者协会",
        "issuer_en": "China Association of Youth Science and Technology Education Workers",
        "issued_on": dt.date(2022, 12, 20),
        "verify_url": f"{BASE}/kepu/verify/KP2022-7F3K-9QXM-2B8D",
    }
    values.update(kw)
    return CertificatePage(**values)  # type: ignore[arg-type]


def test_a_certificate_shows_its_holder_and_a_qr_code_of_its_verification_page(tmp_path: Path) -> None:
    need_font()
    data = render_pdf([page()], title="优秀科普微视频 KP2022-7F3K-9QXM-2B8D", author="中国青少年科技教育工作者协会")
    assert data == render_pdf(
        [page()], title="优秀科普微视频 KP2022-7F3K-9QXM-2B8D", author="中国青少年科技教育工作者协会"
    )
    assert b"/FontFile2" in data and b"+WenQuanYi" in data  # an embedded TrueType subset
    ((text, image),) = pdf_pages(data)
    image.save(tmp_path / "certificate.png")  # type: ignore[attr-defined]
    for expected in (
        "荣誉证书",
        "广州市少年宫",
        "会飞的种子",
        "中国青少年科技教育工作者协会",
        "二〇二二年十二月二十日",
        "KP2022-7F3K-9QXM-2B8D",
    ):
        assert expected in text, expected
    assert not_blank(image)
    assert qr_codes(image) == [f"{BASE}/kepu/verify/KP2022-7F3K-9QXM-2B8D"]


def test_an_empty_page_would_be_called_blank() -> None:
    from PIL import Image

    assert not not_blank(Image.new("RGB", (400, 300), "white"))


# --- issuing ------------------------------------------------------------------------------------------------------


def test_certificates_are_issued_once_per_award_and_verify(ctx: Context, tmp_path: Path) -> None:
    need_font()
    seeded = seed_release(ctx.records, videos=4, accounts=2, best=1)
    plan = steps.plan_certificates(ctx, event={"campaign": CID, "release_id": seeded.release_id})
    # 4 excellent videos + 2 accounts; the best video's 创作之星 certificate waits for its title to be recorded.
    assert len(plan["issued"]) == 6 and set(plan["to_render"]) == set(plan["issued"])
    steps.render_certificates(ctx, plan["to_render"])
    units = steps.write_unit_files(ctx)
    assert units["certificates"] == 6 and units["units"] == len(
        {(e["province"], e["unit"]) for sid, e in seeded.entries.items() if e["awards"]}
    )
    certs = ctx.records.find_certificates(CID)
    residency = next(c for c in certs if c.type == "residency")
    assert residency.award == "优秀科普号" and residency.holder == seeded.entries[residency.submission_id]["holder"]
    # Each PDF: the holder's name in the text, a page that is not blank, a QR code of its own verification URL.
    for cert in certs:
        assert cert.object_key == certificate_key(CID, cert.number)
        with ctx.store.open_local(cert.object_key) as path:
            ((text, image),) = pdf_pages(path.read_bytes())
        assert cert.holder in text and cert.title in text and cert.number in text
        assert not_blank(image)
        assert qr_codes(image) == [verification_url(BASE, cert.number)]
        assert cert.issued_at == ctx.records.list_releases(CID)[-1]["released_at"]
    # The public page reads this table: valid, with the award, the title and the holder only.
    status = public_status(ctx.records.engine, certs[0].number)
    assert (status.state, status.title, status.holder) == ("valid", certs[0].title, certs[0].holder)
    assert public_status(ctx.records.engine, "KP2022-0000-0000-0000").state == "unknown"
    # The per-unit print file holds that unit's certificates, one page each.
    unit_keys = list(ctx.store.list_keys(units_prefix(CID)))
    pages = 0
    for key in unit_keys:
        with ctx.store.open_local(key) as path:
            pages += len(pdf_pages(path.read_bytes()))
    assert pages == 6
    assert ctx.store.exists(register_key(CID))

    # Again: nothing issued, nothing rendered, no object rewritten.
    before = {k: ctx.store.head(k) for k in ctx.store.list_keys(f"campaigns/{CID}/")}
    again = steps.plan_certificates(ctx)
    assert again["issued"] == [] and again["to_render"] == [] and again["revoked"] == []
    steps.write_unit_files(ctx)
    assert {k: ctx.store.head(k) for k in ctx.store.list_keys(f"campaigns/{CID}/")} == before
    # The dashboard's list: no contact data.
    rows = ctx.records.list_certificates(CID)
    assert len(rows) == 6 and not any(k in rows[0] for k in ("phone", "email", "recipient"))
    assert not any(e["email"] in str(rows) or e["phone"] in str(rows) for e in seeded.entries.values())


def test_the_same_row_renders_the_same_bytes(ctx: Context) -> None:
    need_font()
    seed_release(ctx.records, videos=1, accounts=0, best=0, extra=0)
    plan = steps.plan_certificates(ctx)
    steps.render_certificates(ctx, plan["to_render"])
    cert = ctx.records.find_certificates(CID)[0]
    with ctx.store.open_local(cert.object_key or "") as path:
        first = path.read_bytes()
    ctx.store.delete(cert.object_key or "")
    assert steps.plan_certificates(ctx)["to_render"] == [cert.number]  # missing from the store: made again
    steps.render_certificates(ctx, [cert.number])
    with ctx.store.open_local(cert.object_key or "") as path:
        assert path.read_bytes() == first


def test_revoke_and_reissue(ctx: Context) -> None:
    need_font()
    seed_release(ctx.records, videos=2, accounts=0, best=0, extra=0)
    steps.render_certificates(ctx, steps.plan_certificates(ctx)["to_render"])
    old = ctx.records.find_certificates(CID)[0]
    with pytest.raises(AwardError, match=r"理由"):
        steps.revoke(ctx, old.number, actor="王老师", reason=" ")
    revoked = steps.revoke(ctx, old.number, actor="王老师", reason="获奖者名称有误")
    assert (revoked.status, revoked.revoked_by) == ("revoked", "王老师")
    status = public_status(ctx.records.engine, old.number)
    assert status.state == "revoked" and status.revoked_at is not None
    # A person's revocation is not undone by the next run.
    assert steps.plan_certificates(ctx)["issued"] == []
    # The holder's name is corrected, then the certificate is reissued under a new number.
    ctx.records.set_details(
        old.submission_id, {"form": {"单位名称（申报人）": "广州市第二少年宫", "微视频名称": old.title}}
    )
    new = steps.reissue(ctx, old.number, actor="王老师", reason="更正获奖者名称")
    assert new.number != old.number and new.replaces == old.number and new.generation == 1
    assert new.holder == "广州市第二少年宫" and new.valid and new.object_key
    assert public_status(ctx.records.engine, new.number).state == "valid"
    assert public_status(ctx.records.engine, old.number).state == "revoked"
    with pytest.raises(AwardError, match=r"替代|replaced"):
        steps.reissue(ctx, old.number, actor="王老师", reason="again")
    actions = [a["action"] for a in ctx.records.list_audit("certificate")]
    assert actions.count("certificate.revoked") == 1 and actions.count("certificate.reissued") == 1
    # The unit's print file has the new certificate, not the revoked one.
    assert steps.plan_certificates(ctx)["issued"] == []


def test_a_withdrawn_award_revokes_its_certificate(ctx: Context) -> None:
    need_font()
    seeded = seed_release(ctx.records, videos=3, accounts=0, best=0, extra=0)
    steps.render_certificates(ctx, steps.plan_certificates(ctx)["to_render"])
    gone = "s0002"
    release = re_release_without(ctx.records, gone, seeded)
    plan = steps.plan_certificates(ctx, event={"campaign": CID, "release_id": release})
    (number,) = plan["revoked"]
    cert = ctx.records.get_certificate(number)
    assert cert is not None and cert.submission_id == gone and "withdrawn" in (cert.revoke_reason or "")
    assert plan["issued"] == []


def test_the_creation_star_certificate_waits_for_its_title(ctx: Context) -> None:
    need_font()
    seed_release(ctx.records, videos=3, accounts=0, best=1, extra=0)
    steps.plan_certificates(ctx)
    assert not ctx.records.find_certificates(CID, type="creation_star")
    with pytest.raises(AwardError, match=r"最佳作品|best works"):
        steps.record_star(ctx, "s0002", actor="王老师", reason="科普中国公布")
    assert steps.record_star(ctx, "s0000", actor="王老师", reason="科普中国 2023 年 1 月公布") == "new"
    plan = steps.plan_certificates(ctx)
    (star,) = ctx.records.find_certificates(CID, type="creation_star")
    assert plan["issued"] == [star.number] and star.award == "科普中国·中国青少年科技教育工作者协会创作之星"
    steps.render_certificates(ctx, plan["to_render"])
    star = ctx.records.get_certificate(star.number) or star
    with ctx.store.open_local(star.object_key or "") as path:
        ((text, _),) = pdf_pages(path.read_bytes())
    assert "创作之星" in text
    # The title withdrawn: the certificate is revoked by the next run.
    steps.record_star(ctx, "s0000", actor="王老师", reason="更正", value=False)
    assert steps.plan_certificates(ctx)["revoked"] == [star.number]


def test_nothing_is_issued_before_a_release(ctx: Context) -> None:
    ctx.records.upsert_campaign(CID, "x", "sha")
    with pytest.raises(AwardError, match="尚未发布"):
        steps.plan_certificates(ctx)
    with pytest.raises(AwardError, match="2021"):
        steps.plan_certificates(ctx, event={"campaign": "2021", "release_id": 1})


def test_the_dashboard_lists_them_and_the_command_line_revokes_and_reissues(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    need_font()
    from kepu.cli import main
    from kepu.dashboard.judging import judging_view

    seeded = seed_release(ctx.records, videos=2, accounts=0, best=0, extra=0)
    for key, value in ctx.settings.as_env().items():
        monkeypatch.setenv(key, value)
    assert main(["certificates", "issue"]) == 0
    view = judging_view(ctx.records, CID)
    assert view.certificates is not None and len(view.certificates.rows) == 2
    assert not any(e["email"] in str(view.certificates.rows) for e in seeded.entries.values())
    number = view.certificates.rows[0]["number"]
    assert main(["certificates", "verify", number]) == 0
    assert main(["certificates", "reissue", number, "--by", "王老师", "--reason", "更正"]) == 0
    assert main(["certificates", "verify", number]) == 1
    assert '"state": "revoked"' in capsys.readouterr().out
    assert main(["certificates", "revoke", "KP2022-0000-0000-0000", "--by", "王老师", "--reason", "x"]) == 2
    assert main(["publication", "pledge", "s0000", "--by", "王老师", "--reason", "纸质承诺书"]) == 0
    assert ctx.records.list_attestations(CID, "pledge")["s0000"]["value"] is True
