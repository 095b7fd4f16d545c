// Detection results in the coordinates of the frame they were found in (pixels).

export type Point = [number, number];

/** BlazeFace keypoint order. */
export const KEYPOINTS = ['rightEye', 'leftEye', 'nose', 'mouth', 'rightEar', 'leftEar'] as const;

export interface FaceDetection {
  /** [x, y, width, height] */
  box: [number, number, number, number];
  score: number;
  /** Six keypoints in KEYPOINTS order. */
  keypoints: Point[];
}
