from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from kobatela.core.viewsets import ID_PATTERN
from proofs.api import EscrowUploadLinksView, ProofViewSet, UploadLinkViewSet
from proofs.upload_page import SignedFileView, UploadPageView

router = SimpleRouter(trailing_slash=False)
router.register("proofs", ProofViewSet, basename="proof")
router.register("upload-links", UploadLinkViewSet, basename="upload-link")
urlpatterns = [
    *router.urls,
    re_path(rf"^escrows/(?P<escrow_id>{ID_PATTERN})/upload-links$", EscrowUploadLinksView.as_view(),
            name="escrow-upload-links"),
    path("u/<str:token>", UploadPageView.as_view(), name="upload-page"),
    path("proof-files/<str:signed>", SignedFileView.as_view(), name="proof-signed-file"),
]
