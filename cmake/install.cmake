# Install layout (FHS) and the Debian package.
#   bin/dfmon                          share/dfmon/models/*.onnx + cards (found via exe_dir/../share)
#   etc/dfmon/monitor.yaml             lib/systemd/system/dfmon.service
#   lib/<multiarch>/gstreamer-1.0/libgstdfmon.so (when the plugin is built)
#   share/doc/dfmon/{README.md,docs/,examples/,LICENSES.md}
include(GNUInstallDirs)

set(DFM_BIN_DIR ${CMAKE_INSTALL_FULL_BINDIR})
set(DFM_CONF_DIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/dfmon)  # /etc/dfmon when the prefix is /usr
set(DFM_DOC_DIR ${CMAKE_INSTALL_FULL_DOCDIR})
configure_file(${CMAKE_SOURCE_DIR}/packaging/dfmon.service.in ${CMAKE_BINARY_DIR}/packaging/dfmon.service @ONLY)

install(TARGETS dfmon RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES models/resnet18.onnx models/resnet18.json models/vit.onnx models/vit.json models/selfcheck.jpg
              models/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/dfmon/models)
install(FILES packaging/monitor.yaml DESTINATION ${DFM_CONF_DIR})
install(FILES ${CMAKE_BINARY_DIR}/packaging/dfmon.service DESTINATION lib/systemd/system)
install(FILES README.md samples/LICENSES.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs FILES_MATCHING PATTERN "*.md" PATTERN "*.svg" PATTERN "*.png")
install(FILES examples/monitor.yaml samples/clips/real_d18.mp4 samples/clips/synthetic_fake_d18.mp4
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
if(TARGET gstdfmon)
  install(TARGETS gstdfmon LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/gstreamer-1.0)
endif()
# dfmon.1 from the --help of the binary and of each subcommand (help2man), so it cannot drift from the CLI.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/packaging/dfmon.1.gz
    COMMAND bash ${CMAKE_SOURCE_DIR}/packaging/make-man $<TARGET_FILE:dfmon> ${CMAKE_BINARY_DIR}/packaging/dfmon.1.gz
    DEPENDS dfmon ${CMAKE_SOURCE_DIR}/packaging/make-man VERBATIM)
  add_custom_target(dfmon_man ALL DEPENDS ${CMAKE_BINARY_DIR}/packaging/dfmon.1.gz)
  install(FILES ${CMAKE_BINARY_DIR}/packaging/dfmon.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# `cmake --build build --target package` -> build/dfmon_<version>_<arch>.deb
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME dfmon)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "deepfake-monitor maintainers <dfmon@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "detects deepfaked faces in video files and live streams")
set(CPACK_PACKAGE_DESCRIPTION "dfmon audits video files (JSON/HTML reports) and watches live streams (RTSP, HTTP/HLS, UDP, SRT, V4L2) for deepfaked faces with a ResNet-18 + ViT ensemble on OpenCV DNN, with alerts over WebSocket, MQTT and files, a web dashboard, Prometheus metrics and a GStreamer element.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION video)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # shared-library Depends from dpkg-shlibdeps
# Loaded at run time, so dpkg-shlibdeps cannot see them: the landmark model, GStreamer's decoders, a fast BLAS.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libdlib-data, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad, gstreamer1.0-libav, libopenblas0-pthread")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "gstreamer1.0-plugins-ugly, gstreamer1.0-rtsp, mosquitto, redis-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${CMAKE_SOURCE_DIR}/packaging/conffiles")
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)  # fast; the ONNX weights barely compress anyway
# The package installs where the build was configured to (scripts/package configures /usr).
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
include(CPack)
