"""The upload form: the video plus the upscaling parameters, checked by probing the file's content."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from gpu import assets
from gpu.params import PARAMETER_LIMITS, InputError

from . import services
from .defaults import parameter_defaults
from .localized import localize
from .models import Codec, ColorFix, Container, Scale, Variant


def unready_model_variants() -> dict[str, str]:
    """Map each model variant whose weight files are missing or damaged to the asset report's summary."""
    report = assets.report(settings.FLASHVSR_MODEL_DIR)
    return {variant: entry.summary for variant, entry in report.variants.items() if not entry.ready}


def _limits(parameter: str) -> dict:
    minimum, maximum = PARAMETER_LIMITS[parameter]
    return {"min_value": minimum, "max_value": maximum}


def _variant_not_ready(variant: str) -> forms.ValidationError:
    return forms.ValidationError(
        _(
            "The weights of the %(variant)s model are missing or damaged on this server. "
            "Choose another model, or ask the operator to run `python manage.py download_weights`."
        ),
        code="variant_not_ready",
        params={"variant": dict(Variant.choices)[variant]},
    )


class UploadForm(forms.Form):
    variant = forms.ChoiceField(label=_("Model"), choices=Variant.choices, required=False)
    scale = forms.TypedChoiceField(
        label=_("Scale"),
        choices=Scale.choices,
        coerce=int,
        required=False,
        help_text=_("4× is what the model was trained for; 2× and 3× work but are less sharp."),
    )
    sparse_ratio = forms.FloatField(
        label=_("Sparse ratio"),
        **_limits("sparse_ratio"),
        required=False,
        help_text=_("Share of attention kept: 1.5 is faster, 2.0 is more stable."),
    )
    kv_ratio = forms.FloatField(
        label=_("KV cache ratio"),
        **_limits("kv_ratio"),
        required=False,
        help_text=_("Number of earlier latent slabs each step attends to."),
    )
    local_range = forms.IntegerField(
        label=_("Local range"),
        **_limits("local_range"),
        required=False,
        help_text=_("Attention neighbourhood in 128-pixel windows: 9 is sharper, 11 is more stable."),
    )
    color_fix = forms.ChoiceField(label=_("Colour fix"), choices=ColorFix.choices, required=False)
    seed = forms.IntegerField(label=_("Seed"), **_limits("seed"), required=False)
    codec = forms.ChoiceField(label=_("Codec"), choices=Codec.choices, required=False)
    container = forms.ChoiceField(label=_("Container"), choices=Container.choices, required=False)
    crf = forms.IntegerField(
        label=_("Quality (CRF)"),
        **_limits("crf"),
        required=False,
        help_text=_("Lower is better quality and a larger file; 18 is visually lossless for most videos."),
    )
    preset = forms.ChoiceField(label=_("Encoder preset"), required=False)
    tiled = forms.BooleanField(
        label=_("Tiled processing"),
        required=False,
        help_text=_("Runs the model in overlapping tiles: uses less GPU memory, takes longer."),
    )
    kv_offload = forms.BooleanField(
        label=_("Offload KV cache to CPU memory"), required=False, help_text=_("For GPUs with little memory.")
    )
    keep_partial_on_decode_error = forms.BooleanField(
        label=_("Keep the partial result if the source breaks mid-way"), required=False
    )
    # Last in the form on purpose: a browser sends fields in order, so the small fields above arrive even when
    # the upload handler stops a file that is too large.
    video = forms.FileField(
        label=_("Video file"),
        error_messages={
            "required": _("Choose a video file to upload."),
            "empty": _("The file is empty (0 bytes). Choose the video file again."),
        },
    )

    def __init__(self, *args, upload_rejection: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.upload_rejection = upload_rejection
        self.source_info = None
        self.fields["preset"].choices = [(name, name) for name in settings.ENCODER_PRESETS]
        self.fields["container"].initial = Container.MP4
        for name, default in parameter_defaults().items():
            self.fields[name].initial = default
        self.unready_variants = unready_model_variants()
        self.fields["variant"].choices = [
            (
                value,
                _("%(variant)s (weights missing)") % {"variant": label}
                if value in self.unready_variants
                else label,
            )
            for value, label in Variant.choices
        ]
        if self.fields["variant"].initial in self.unready_variants:
            # Preselect the baseline that always runs, so a fresh install's first upload is not rejected.
            self.fields["variant"].initial = Variant.LANCZOS

    def full_clean(self) -> None:
        super().full_clean()
        if self.is_bound and self.upload_rejection:
            # The handler stopped the file, so "required" would be misleading: show why it was stopped.
            self._errors.pop("video", None)
            self.add_error("video", forms.ValidationError(self.upload_rejection, code="too_large"))

    def clean_video(self):
        video = self.cleaned_data["video"]
        if video.size > settings.FLASHVSR_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _(
                    "The file is larger than the upload limit of %(limit)s. "
                    "Upload a smaller or shorter video."
                ),
                code="too_large",
                params={"limit": filesizeformat(settings.FLASHVSR_MAX_UPLOAD_BYTES)},
            )
        return video

    def clean(self):
        cleaned = super().clean()
        # Optional fields fall back to the settings' defaults when a request leaves them out (for example a
        # plain form with only the file, variant and scale, or a script posting with curl).
        for name, default in parameter_defaults().items():
            if cleaned.get(name) in (None, ""):
                cleaned[name] = default
        if not cleaned.get("container"):
            cleaned["container"] = Container.MP4
        if cleaned.get("variant") in self.unready_variants:
            self.add_error("variant", _variant_not_ready(cleaned["variant"]))
        if "video" in cleaned and not self.has_error("video"):
            self._check_source(cleaned["video"], cleaned["scale"])
        return cleaned

    def _check_source(self, video, scale: int) -> None:
        try:
            self.source_info = services.probe_upload(video.temporary_file_path())
            services.check_source_limits(self.source_info, scale)
        except InputError as error:
            self.add_error("video", forms.ValidationError(localize(error.user_message), code="invalid_video"))
        except services.SourceRejected as error:
            self.add_error("video", forms.ValidationError(error.message, code=error.code))

    def variant_problems(self) -> list[tuple[str, str]]:
        """Return (variant label, what is wrong) for each model variant whose weights are not ready."""
        labels = dict(Variant.choices)
        return [(labels[variant], summary) for variant, summary in self.unready_variants.items()]

    def advanced_fields(self) -> list:
        """Return the bound fields shown under "Advanced settings": all but the file, variant and scale."""
        return [self[name] for name in self.fields if name not in ("video", "variant", "scale")]

    def upscale_fields(self) -> dict:
        """Return the cleaned value of every Task parameter field, keyed by field name."""
        return {name: self.cleaned_data[name] for name in services.PARAM_FIELDS}
